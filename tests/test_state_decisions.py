"""What the caches share through ``smart_imaging.state`` (fast tier, one ``MemoryState`` standing
for Redis between two "replicas"): authorization outcomes as JSON (grants and refusals, one
computation for both, a copy living only as long as the shared entry), what is never shared or
read, an unreachable store as a miss; ``AccessGrant`` JSON; the study guard's confirmations."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from smart_imaging.access.decisions import Refused
from smart_imaging.auth.base import AccessGrant
from smart_imaging.auth.decision_cache import DecisionCache, Outcome, SharedOutcomes
from smart_imaging.auth.grant_json import grant_from_json, grant_to_json
from smart_imaging.errors import Forbidden, InsufficientScope, Unauthorized, Unavailable
from smart_imaging.routes.study_guard import StudyGuard
from smart_imaging.state import MemoryState, StateUnavailable, scoped
from tests.access.test_retrieval import BOUND, Archive, study

GRANT = AccessGrant(
    patient_id="p1",
    scopes=frozenset({"patient/ImagingStudy.rs", "patient/*.rs"}),
    client_id="viewer",
    subject="u1",
    extra={"exp": 1_900_000_000, "patient": {"resourceType": "Patient", "id": "p1"}},
    expires_at=1_900_000_000.0,
    user="Practitioner/9",
    issuer="https://ehr.example",
    token_scopes=frozenset({"launch/patient", "patient/ImagingStudy.rs"}),
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Down(MemoryState):
    """A shared store that is unreachable: every call raises, as ``RedisState`` does."""

    async def get_ttl(self, key: str) -> tuple[str, float] | None:
        raise StateUnavailable()

    async def set(self, key: str, value: str, ttl: float) -> None:
        raise StateUnavailable()


def replicas(state: MemoryState, clock: Clock) -> tuple[DecisionCache[AccessGrant], ...]:
    shared = SharedOutcomes(scoped(state, "authz", "t"), grant_to_json, grant_from_json)
    return tuple(DecisionCache(clock=clock, shared=shared) for _ in range(2))


class Counter:
    def __init__(self, outcome: Outcome[AccessGrant]) -> None:
        self.outcome, self.calls = outcome, 0

    async def __call__(self) -> Outcome[AccessGrant]:
        self.calls += 1
        return self.outcome


def test_grants_round_trip_through_json_and_odd_shapes_are_refused() -> None:
    data = json.loads(json.dumps(grant_to_json(GRANT)))
    back = grant_from_json(data)
    assert back == GRANT and back.extra == GRANT.extra and back.token_scopes == GRANT.token_scopes
    assert back.expires_at == GRANT.expires_at and back.user == GRANT.user and back.issuer == GRANT.issuer
    for broken in (
        {**data, "scopes": "patient/*.rs"},
        {**data, "extra": []},
        {k: v for k, v in data.items() if k != "backend"},
        {**data, "unknown": 1},
        {**data, "expires_at": "soon"},
        {**data, "disable_authz_checks": "yes"},
        [],
    ):
        with pytest.raises((TypeError, KeyError)):
            grant_from_json(broken)


async def test_one_computation_for_two_replicas_and_the_copy_ends_with_the_shared_entry() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    one, two = replicas(state, clock)
    compute = Counter(Outcome.granted(GRANT, 60))
    assert await one.get_or_compute("tok", compute) == GRANT
    clock.now += 50
    found = await two.get_or_compute("tok", compute)
    assert found == GRANT and found.extra == GRANT.extra and compute.calls == 1
    clock.now += 10.5  # the shared entry (60 s from the first) is over: both replicas ask again
    assert await two.get_or_compute("tok", compute) == GRANT and compute.calls == 2
    stored = json.loads(await state.get("authz:t:tok") or "{}")
    assert grant_from_json(stored["grant"]) == GRANT


async def test_refusals_are_shared_as_data_and_raised_afresh() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    one, two = replicas(state, clock)
    refusal = InsufficientScope("the token has no imaging scope", scope="patient/ImagingStudy.rs")
    compute = Counter(Outcome.refused(refusal, 5))
    with pytest.raises(InsufficientScope) as first:
        await one.get_or_compute("tok", compute)
    with pytest.raises(InsufficientScope) as second:
        await two.get_or_compute("tok", compute)
    assert compute.calls == 1 and first.value is not second.value
    assert second.value.message == refusal.message and second.value.headers == refusal.headers
    assert second.value.status == 403
    stored = json.loads(await state.get("authz:t:tok") or "{}")
    assert stored["refusal"]["kind"] == "smart_imaging.errors.InsufficientScope"
    unauthorized = Unauthorized("token inactive")
    with pytest.raises(Unauthorized) as caught:
        await one.get_or_compute("other", Counter(Outcome.refused(unauthorized, 5)))
    with pytest.raises(Unauthorized) as again:
        await two.get_or_compute("other", Counter(Outcome.granted(GRANT, 5)))  # not asked: shared
    assert again.value.headers["WWW-Authenticate"] == caught.value.headers["WWW-Authenticate"]


async def test_what_is_never_shared_and_what_is_never_read() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    one, two = replicas(state, clock)
    for key, outcome in (
        ("zero", Outcome.granted(GRANT, 0)),
        ("odd", Outcome.granted(replace(GRANT, extra={"x": {1, 2}}), 60)),
    ):
        await one.get_or_compute(key, Counter(outcome))
        assert await state.get(f"authz:t:{key}") is None  # a TTL of 0, a value that is no JSON
    await state.set("authz:t:bad", '{"grant": {"patient_id": "p2"}}', 60)  # another shape
    await state.set(
        "authz:t:evil", json.dumps({"refusal": {"kind": "os.system", "args": ["x"], "attributes": {}}}), 60
    )
    await state.set("authz:t:junk", "not json", 60)
    for key in ("bad", "evil", "junk"):
        compute = Counter(Outcome.granted(GRANT, 60))
        assert await two.get_or_compute(key, compute) == GRANT and compute.calls == 1  # a miss

    async def transient() -> Outcome[AccessGrant]:
        raise Unavailable("EHR down", retry_after=3)

    with pytest.raises(Unavailable):
        await one.get_or_compute("flaky", transient)
    assert await state.get("authz:t:flaky") is None  # transient failures are never remembered


async def test_an_unreachable_store_is_a_miss_not_an_error() -> None:
    cache: DecisionCache[AccessGrant] = DecisionCache(
        shared=SharedOutcomes(Down(), grant_to_json, grant_from_json)
    )
    compute = Counter(Outcome.granted(GRANT, 60))
    for _ in range(3):
        assert await cache.get_or_compute("tok", compute) == GRANT
    assert compute.calls == 1  # remembered in this process meanwhile
    with pytest.raises(Forbidden):
        await cache.get_or_compute("no", Counter(Outcome.refused(Forbidden("no"), 5)))


async def test_the_study_guard_shares_confirmations_not_refusals() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    archive = Archive({BOUND.study_uid: [study()]})
    one, two = (StudyGuard(clock=clock, shared=scoped(state, "guard", "c")) for _ in range(2))
    assert await one.confirm(archive, BOUND) is BOUND
    assert await two.confirm(archive, BOUND) is BOUND and len(archive.queries) == 1
    keys = [key for key in state._entries._entries]  # what the shared store holds
    assert len(keys) == 1 and BOUND.mrn not in keys[0] and BOUND.study_uid not in keys[0]
    clock.now += 301  # the shared confirmation is over
    archive.studies[BOUND.study_uid].append(study("MRN-2"))  # the archive changed meanwhile
    refused = await two.confirm(archive, BOUND)
    assert isinstance(refused, Refused) and len(archive.queries) == 2
    assert isinstance(await one.confirm(archive, BOUND), Refused) and len(archive.queries) == 3
    lonely = StudyGuard(shared=Down())
    archive.studies[BOUND.study_uid] = [study()]
    assert await lonely.confirm(archive, BOUND) is BOUND and await lonely.confirm(archive, BOUND) is BOUND
    assert len(archive.queries) == 4
