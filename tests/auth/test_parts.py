"""The authorizer's parts on their own, fast: outcomes and refusals, quirks, the mock, the
composed authorizer with a fake verifier, and the import graph of the package."""

from __future__ import annotations

import asyncio
from typing import Any

import grimp
import pytest

from smart_imaging.auth import ComposedAuthorizer
from smart_imaging.auth.authorizer import DecisionRules
from smart_imaging.auth.base import AccessGrant, AuthRequest
from smart_imaging.auth.decision_cache import DecisionCache, Outcome, Refusal
from smart_imaging.auth.discovery import SmartEndpoints
from smart_imaging.auth.mock import ConfiguredPatient
from smart_imaging.auth.parts import VerifiedToken
from smart_imaging.auth.quirks import (
    BY_TYPE,
    EPIC,
    MEDITECH,
    STANDARD,
    introspection_beside_token_endpoint,
    launch_patient_or_sub_url,
)
from smart_imaging.config.tenant import MockAuthorization
from smart_imaging.errors import Forbidden, InsufficientScope, Unauthorized, UpstreamError
from smart_imaging.tenants.authorizers import build_authorizer

NOW = 1_700_000_000.0
GOOD = {"active": True, "exp": NOW + 60, "scope": "patient/ImagingStudy.rs", "patient": "p1"}


# ------------------------------------------------------------------ refusals and outcomes


@pytest.mark.parametrize(
    "error",
    [
        Unauthorized("access token expired"),
        Unauthorized("missing access token", error=None),
        InsufficientScope("no imaging scope", scope="patient/ImagingStudy.rs"),
        Forbidden("another patient"),
    ],
)
def test_a_refusal_builds_an_equal_but_new_error_each_time(error: Exception) -> None:
    refusal = Refusal.of(error)  # type: ignore[arg-type]
    first, second = refusal.error(), refusal.error()
    assert first is not error and second is not first
    for fresh in (first, second):
        assert type(fresh) is type(error)
        assert vars(fresh) == vars(error)  # message, headers, error code
        assert fresh.__traceback__ is None and fresh.__cause__ is None
    first.headers["X-Changed"] = "by one response"
    assert "X-Changed" not in refusal.error().headers and "X-Changed" not in error.headers  # type: ignore[attr-defined]


async def test_a_cached_failure_raises_a_new_exception_instance_each_time() -> None:
    cache: DecisionCache[str] = DecisionCache()
    calls = 0

    async def refuse() -> Outcome[str]:
        nonlocal calls
        calls += 1
        try:
            try:
                raise ValueError("the cause")
            except ValueError as exc:
                raise Unauthorized("access token is not active") from exc
        except Unauthorized as refused:
            return Outcome.refused(refused, 30)

    raised = []
    for _ in range(3):
        with pytest.raises(Unauthorized) as caught:
            await cache.get_or_compute("k", refuse)
        raised.append(caught.value)
    assert calls == 1
    assert len({id(e) for e in raised}) == 3
    assert {e.message for e in raised} == {"access token is not active"}
    assert all(e.__cause__ is None for e in raised)  # the first computation's cause stays there


async def test_concurrent_waiters_on_one_refusal_each_get_their_own_exception() -> None:
    cache: DecisionCache[str] = DecisionCache()
    gate = asyncio.Event()

    async def refuse() -> Outcome[str]:
        await gate.wait()
        return Outcome.refused(Forbidden("no patient"), 30)

    tasks = [asyncio.create_task(cache.get_or_compute("k", refuse)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, Forbidden) for r in results)
    assert len({id(r) for r in results}) == 5


def test_an_outcome_stores_data_not_the_exception() -> None:
    error = Unauthorized("inactive")
    outcome: Outcome[str] = Outcome.refused(error, 5)
    assert outcome.value is None and outcome.refusal is not None
    assert all(value is not error for value in vars(outcome).values())
    assert outcome.refusal.kind is Unauthorized and outcome.refusal.args == ("inactive",)
    assert Outcome.granted("grant", 5).unwrap() == "grant"


# ------------------------------------------------------------------ quirks


@pytest.mark.parametrize(
    "claims, expected",
    [
        ({"patient": "p1", "sub": "https://ehr/fhir/Patient/p2"}, "p1"),  # the launch context wins
        ({"sub": "https://ehr/fhir/Patient/p2"}, "p2"),
        ({"sub": "https://ehr/fhir/Patient/p2/"}, None),
        ({"sub": "https://evil.example/fhir/Patient/p2"}, None),
        ({"sub": "https://ehr/fhir/Patient/../x"}, None),
        ({"sub": "https://ehr/fhir/Practitioner/p2"}, None),
        ({}, None),
    ],
)
def test_epic_patient_from_sub_url_only_under_the_tenant_ehr(
    claims: dict[str, Any], expected: str | None
) -> None:
    assert launch_patient_or_sub_url(claims, "https://ehr/fhir/") == expected
    assert STANDARD.patient_of(claims, "https://ehr/fhir") == claims.get("patient")


def test_epic_introspection_endpoint() -> None:
    token_only = SmartEndpoints(token_endpoint="https://as/oauth2/token/")
    assert introspection_beside_token_endpoint(token_only, None) == "https://as/oauth2/introspect"
    assert introspection_beside_token_endpoint(token_only, "https://as/own") == "https://as/own"
    named = SmartEndpoints(token_endpoint="https://as/oauth2/issue", introspection_endpoint="https://as/i")
    assert introspection_beside_token_endpoint(named, None) == "https://as/i"
    with pytest.raises(UpstreamError):
        introspection_beside_token_endpoint(SmartEndpoints(token_endpoint="https://as/issue"), None)
    with pytest.raises(UpstreamError):
        STANDARD.introspection_endpoint(token_only, None)  # plain SMART derives nothing


def test_every_authorization_type_has_its_quirks() -> None:
    from typing import get_args

    from smart_imaging.config.tenant import SmartType

    assert set(BY_TYPE) == {*get_args(SmartType), "mock"}
    assert BY_TYPE["smart-on-fhir-with-epic-bugfixes"] is EPIC
    assert "DiagnosticReport" in EPIC.resources and "DiagnosticReport" not in STANDARD.resources
    assert MEDITECH.introspection_auth == "client_secret_basic" and MEDITECH.patient_from_request


# ------------------------------------------------------------------ the mock


async def test_mock_grants_the_configured_patient_without_a_token() -> None:
    patient = {"resourceType": "Patient", "id": "pat_1", "identifier": [{"value": "M1"}]}
    authorizer = build_authorizer(MockAuthorization(type="mock", patient=patient), None)  # type: ignore[arg-type]
    grant = await authorizer.authorize(AuthRequest(None, "t"))
    assert grant == AccessGrant(patient_id="pat_1", scopes=frozenset({"patient/*.rs"}), client_id="mock")
    assert (await authorizer.authorize(AuthRequest("anything", "t", "other"))).patient_id == "pat_1"
    resource = await authorizer.patient(grant)
    assert resource == patient and resource is not patient
    assert await authorizer.ehr_configuration() is None


async def test_mock_without_patient_and_with_checks_off() -> None:
    config = MockAuthorization(type="mock", disableAuthzChecks=True)
    authorizer = build_authorizer(config, None)  # type: ignore[arg-type]
    grant = await authorizer.authorize(AuthRequest(None, "t"))
    assert grant.patient_id is None and grant.disable_authz_checks
    assert await authorizer.patient(grant) is None
    assert await ConfiguredPatient(None).patient(grant) is None


# ------------------------------------------------------------------ the composed authorizer


class FakeVerifier:
    """Vouches for whatever claims the test gives it, counting calls."""

    needs_token = True

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.calls = 0

    async def verify(self, token: str | None) -> VerifiedToken:
        self.calls += 1
        return VerifiedToken(dict(self.claims))


def composed(verifier: FakeVerifier, **rules: Any) -> ComposedAuthorizer:
    settings = {"cache_ttl": 60.0, "negative_ttl": 30.0, **rules}
    return ComposedAuthorizer(
        verifier, ConfiguredPatient(None), STANDARD, DecisionRules(**settings), clock=lambda: NOW
    )


async def test_composed_grant_from_verified_claims_is_cached() -> None:
    verifier = FakeVerifier({**GOOD, "client_id": "app", "sub": "u1"})
    authorizer = composed(verifier)
    grants = [await authorizer.authorize(AuthRequest("tok", "t")) for _ in range(3)]
    assert grants[0] == AccessGrant("p1", False, frozenset({"patient/ImagingStudy.rs"}), "app", "u1")
    assert grants[0].extra == {"exp": NOW + 60} and verifier.calls == 1
    with pytest.raises(Unauthorized) as caught:
        await authorizer.authorize(AuthRequest(None, "t"))
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer realm="smart-imaging"'


async def test_composed_cached_refusal_is_a_new_exception_per_request() -> None:
    verifier = FakeVerifier({**GOOD, "patient": None})
    authorizer = composed(verifier)
    raised = []
    for _ in range(3):
        with pytest.raises(Forbidden) as caught:
            await authorizer.authorize(AuthRequest("tok", "t"))
        raised.append(caught.value)
    assert verifier.calls == 1 and len({id(e) for e in raised}) == 3
    assert all(e.message == "access token has no patient context" for e in raised)


async def test_composed_refuse_all_and_disabled_checks() -> None:
    verifier = FakeVerifier({"active": True, "scope": "user/*.rs"})
    off = ComposedAuthorizer(
        verifier,
        ConfiguredPatient(None),
        MEDITECH,
        DecisionRules(),
        refuse_all=Refusal.of(Forbidden("switched off")),
    )
    with pytest.raises(Forbidden) as caught:
        await off.authorize(AuthRequest("tok", "t"))
    first = caught.value
    with pytest.raises(Forbidden) as caught:
        await off.authorize(AuthRequest(None, "t"))  # refused before the missing-token challenge
    second = caught.value
    assert first is not second and verifier.calls == 0
    lenient = composed(verifier, disable_authz_checks=True)
    grant = await lenient.authorize(AuthRequest("tok", "t"))
    assert grant.disable_authz_checks and grant.patient_id is None and grant.scopes == {"user/*.rs"}


# ------------------------------------------------------------------ the package's imports


def test_no_import_cycle_inside_auth() -> None:
    graph = grimp.build_graph("smart_imaging", cache_dir=None)
    modules = sorted(m for m in graph.find_descendants("smart_imaging.auth"))
    cycles = [
        (a, b)
        for i, a in enumerate(modules)
        for b in modules[i + 1 :]
        if graph.find_shortest_chain(a, b) and graph.find_shortest_chain(b, a)
    ]
    assert cycles == []


async def test_concurrent_callers_sharing_a_transient_failure_each_raise_their_own_copy() -> None:
    from smart_imaging.auth.decision_cache import SingleFlight
    from smart_imaging.errors import Unavailable

    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def down() -> int:
        await gate.wait()
        try:
            raise ConnectionError("refused")
        except ConnectionError as exc:
            raise Unavailable("EHR unavailable", retry_after=5) from exc

    tasks = [asyncio.create_task(flight.run("k", down)) for _ in range(4)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, Unavailable) and r.headers == {"Retry-After": "5"} for r in results)
    assert len({id(r) for r in results}) == 4
    assert all(isinstance(r.__cause__, ConnectionError) for r in results)  # the cause is kept
