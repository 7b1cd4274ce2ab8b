"""Security regressions in the authorization layer: expiry edge cases, single flight."""

from __future__ import annotations

import pytest

from smart_imaging.auth.claims import TokenPolicy, check_token
from smart_imaging.auth.decision_cache import TtlCache
from smart_imaging.errors import Unauthorized

NOW = 1_700_000_000.0
GOOD = {"active": True, "exp": NOW + 60, "scope": "patient/ImagingStudy.rs", "patient": "p1"}


@pytest.mark.parametrize("claim, value", [
    ("exp", float("nan")), ("exp", float("inf")), ("nbf", float("nan")), ("nbf", float("-inf")),
])
def test_non_finite_exp_or_nbf_is_refused(claim: str, value: float) -> None:
    """Python's json accepts NaN and Infinity; an exp of NaN compared false with every time,
    so the token never expired and its decision was cached forever."""
    with pytest.raises(Unauthorized):
        check_token({**GOOD, claim: value}, TokenPolicy(), NOW)


def test_ttl_cache_never_keeps_an_entry_with_a_nan_ttl() -> None:
    cache: TtlCache[int] = TtlCache()
    cache.put("k", 1, float("nan"))
    assert cache.get("k") is None and len(cache) == 0
