"""``AccessGrant`` <-> JSON data, for decisions shared between replicas (``decision_cache``).

Every field is written; sets become sorted lists. Reading is strict about types: a stored value
of another shape (another version of the server) raises ``TypeError``/``KeyError``, which the
cache treats as a miss, so a grant is never half-read.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import AccessGrant

_SETS = ("scopes", "token_scopes")
_FIELDS = {f.name for f in dataclasses.fields(AccessGrant)}


def grant_to_json(grant: AccessGrant) -> dict[str, Any]:
    data = {f.name: getattr(grant, f.name) for f in dataclasses.fields(AccessGrant)}
    for name in _SETS:
        data[name] = sorted(data[name])
    return data


def grant_from_json(data: Any) -> AccessGrant:
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise KeyError("not an AccessGrant of this version")
    sets = {name: frozenset(_strings(data[name])) for name in _SETS}
    if not isinstance(data["extra"], dict) or not isinstance(data["disable_authz_checks"], bool):
        raise TypeError("AccessGrant field of the wrong type")
    expires = data["expires_at"]
    if expires is not None and not isinstance(expires, (int, float)):
        raise TypeError("AccessGrant.expires_at is not a number")
    return AccessGrant(**{**data, **sets, "expires_at": None if expires is None else float(expires)})


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return value
