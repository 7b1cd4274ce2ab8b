"""Whether a WADO-RS request may retrieve (``access.retrieval``), table-driven, without any server.

``decide_retrieval``: grant + opened binding + the request's tenant and study + tenant rules.
``check_study``: the scope against the archive's study-level answer (mixed-patient studies, and
the place issue 11's policy plugs in). Last, the study guard's I/O (``routes.study_guard``) with
a small fake source: one archive search per (tenant, study, MRN), refusals never remembered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pytest

from smart_imaging.access.decisions import Refused, Why
from smart_imaging.access.policy import Outcome, Requester, StudyDecision, decide_study
from smart_imaging.access.retrieval import (
    RetrievalRequest,
    RetrievalScope,
    StudyPolicy,
    check_study,
    decide_retrieval,
)
from smart_imaging.access.rules import TenantRules
from smart_imaging.auth.base import AccessGrant
from smart_imaging.binding import Binding
from smart_imaging.config.policy import parse_policy
from smart_imaging.dicom import tags
from smart_imaging.errors import Forbidden, NotFound
from smart_imaging.routes.study_guard import StudyGuard
from smart_imaging.sources import StudyQuery, StudyRecord

NOW = 1_800_000_000.0
STUDY, OTHER_STUDY = "1.2.3", "1.2.4"
TOKEN_A, TOKEN_B = "digest-of-token-a", "digest-of-token-b"  # binding.token_digest() values

MOCK = TenantRules(authorizer="mock")
MOCK_ALL = TenantRules(lookup="all-studies-on-server", authorizer="mock")
REAL = TenantRules(fhir_base_url="https://ehr.example/fhir")
DEBUG = TenantRules(lookup="all-studies-on-server", disable_authz_checks=True, authorizer="mock")
DEBUG_REAL = replace(REAL, disable_authz_checks=True)
MEDITECH = replace(REAL, patient_from_request=True)
MEDITECH_OPTED_IN = replace(MEDITECH, allow_patient_from_request=True)


def grant(patient: str | None = "p1", *, off: bool = False) -> AccessGrant:
    return AccessGrant(patient_id=patient, disable_authz_checks=off)


def binding(
    patient: str | None = "p1",
    mrn: str | None = "MRN-1",
    *,
    tenant: str = "t",
    study: str = STUDY,
    ttl: float = 60,
    token: str | None = TOKEN_A,
) -> Binding:
    return Binding(tenant, study, patient, int(NOW + ttl), mrn, token)


G, OPEN = grant(), grant(None, off=True)
ASKED = RetrievalRequest("t", STUDY, token_digest=TOKEN_A)
SERIES = RetrievalRequest("t", STUDY, "1.2.3.9", token_digest=TOKEN_A)


@dataclass(frozen=True)
class Row:
    name: str
    grant: AccessGrant
    binding: Binding
    rules: TenantRules
    expect: Why | tuple[str | None, str | None]  # refusal, or the scope's (patient_id, mrn)
    request: RetrievalRequest = ASKED


# fmt: off
ROWS = [
    Row("genuine", G, binding(), REAL, ("p1", "MRN-1")),
    Row("genuine, mock", G, binding(), MOCK, ("p1", "MRN-1")),
    Row("expired", G, binding(ttl=0), REAL, Why.EXPIRED),
    Row("expired long ago", G, binding(ttl=-3600), MOCK, Why.EXPIRED),
    Row("other tenant", G, binding(tenant="u"), REAL, Why.OTHER_TENANT),
    Row("other study", G, binding(study=OTHER_STUDY), REAL, Why.OTHER_STUDY),
    Row("another study appended", G, binding(), REAL, Why.OTHER_STUDY,
        RetrievalRequest("t", OTHER_STUDY, token_digest=TOKEN_A)),
    # token-bound capabilities (IG "Retrieving images"): only the token that searched opens it
    Row("another token of the same patient", G, binding(), REAL, Why.OTHER_TOKEN,
        RetrievalRequest("t", STUDY, token_digest=TOKEN_B)),
    Row("another token, mock", G, binding(), MOCK, Why.OTHER_TOKEN, RetrievalRequest("t", STUDY, token_digest=TOKEN_B)),
    Row("binding bound to no token", G, binding(token=None), REAL, Why.OTHER_TOKEN),
    Row("request names no token digest", G, binding(), REAL, Why.OTHER_TOKEN, RetrievalRequest("t", STUDY)),
    Row("off: any token", OPEN, binding(None, None, token=None), DEBUG, (None, None),
        RetrievalRequest("t", STUDY, token_digest=TOKEN_B)),
    Row("no patient in the token", grant(None), binding(), REAL, Why.NO_PATIENT_CONTEXT),
    Row("other patient's token", grant("p2"), binding(), REAL, Why.OTHER_PATIENT),
    Row("other patient's token, mock", grant("p2"), binding(), MOCK, Why.OTHER_PATIENT),
    Row("binding issued with checks off", G, binding(None), REAL, Why.UNBOUND_BINDING),
    Row("binding without mrn, real", G, binding(mrn=None), REAL, Why.BINDING_WITHOUT_MRN),
    Row("binding without mrn, mock", G, binding(mrn=None), MOCK_ALL, ("p1", None)),
    Row("series of the study", G, binding(), REAL, ("p1", "MRN-1"), SERIES),
    # the Meditech option
    Row("meditech without opt-in", G, binding(), MEDITECH, Why.PATIENT_FROM_REQUEST_DISABLED),
    Row("meditech opted in", G, binding(), MEDITECH_OPTED_IN, ("p1", "MRN-1")),
    Row("meditech, other patient", grant("p2"), binding(), MEDITECH_OPTED_IN, Why.OTHER_PATIENT),
    # checks off: any caller of the tenant, but only the tenant, study and lifetime of the binding
    Row("off: unbound binding", OPEN, binding(None, None), DEBUG, (None, None)),
    Row("off: unbound binding, real", OPEN, binding(None, None), DEBUG_REAL, (None, None)),
    Row("off: keeps the binding's mrn", OPEN, binding(None, "MRN-7"), DEBUG, (None, "MRN-7")),
    Row("off: other tenant", OPEN, binding(None, None, tenant="u"), DEBUG, Why.OTHER_TENANT),
    Row("off: other study", OPEN, binding(None, None, study=OTHER_STUDY), DEBUG, Why.OTHER_STUDY),
    Row("off: expired", OPEN, binding(None, None, ttl=0), DEBUG, Why.EXPIRED),
    # checks are lifted only when tenant and grant agree
    Row("tenant off, grant on", grant(None), binding(None, None), DEBUG, Why.NO_PATIENT_CONTEXT),
    Row("tenant off, grant on, unbound", G, binding(None, None), DEBUG, Why.UNBOUND_BINDING),
    Row("tenant on, grant off", OPEN, binding(None, None), MOCK_ALL, Why.NO_PATIENT_CONTEXT),
]
# fmt: on


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_retrieval(row: Row) -> None:
    decision = decide_retrieval(row.grant, row.binding, row.request, row.rules, NOW)
    if isinstance(row.expect, Why):
        assert isinstance(decision, Refused) and decision.why is row.expect, decision
        assert decision.status == 403 and isinstance(decision.error(), Forbidden)
    else:
        patient_id, mrn = row.expect
        assert decision == RetrievalScope("t", row.request.study_uid, row.request.series_uid, patient_id, mrn)
        assert decision.verify_study is (mrn is not None)


def test_refusals_tell_what_is_wrong_in_the_words_clients_know() -> None:
    def message(row: Row) -> str:
        decision = decide_retrieval(row.grant, row.binding, row.request, row.rules, NOW)
        assert isinstance(decision, Refused)
        return decision.message

    by_name = {r.name: r for r in ROWS}
    assert "expired" in message(by_name["expired"]) and "search ImagingStudy again" in message(
        by_name["expired"]
    )
    assert "patient" in message(by_name["other patient's token"])
    assert "patient" in message(by_name["binding issued with checks off"])
    assert message(by_name["other study"]) == message(by_name["other tenant"])  # says no more than that
    assert "study" in message(by_name["other study"])


# ---------------------------------------------------------------- check_study


def study(patient: str | None = "MRN-1", uid: str = STUDY) -> dict[str, Any]:
    ds: dict[str, Any] = {tags.StudyInstanceUID: {"vr": "UI", "Value": [uid]}}
    if patient is not None:
        ds[tags.PatientID] = {"vr": "LO", "Value": [patient]}
    return ds


BOUND = RetrievalScope("t", STUDY, None, "p1", "MRN-1")
UNBOUND = RetrievalScope("t", STUDY, None, None, None)


@pytest.mark.parametrize(
    ("scope", "answer", "expect"),
    [
        (BOUND, [study()], None),
        (BOUND, [study(), study()], None),
        (BOUND, [], Why.STUDY_NOT_FOUND),
        (UNBOUND, [], Why.STUDY_NOT_FOUND),
        (BOUND, [study(), study("MRN-2")], Why.MIXED_PATIENTS),
        (BOUND, [study(None)], Why.MIXED_PATIENTS),
        (UNBOUND, [study("MRN-2"), study("MRN-3")], None),
    ],
    ids=["own", "own twice", "unknown", "unknown unbound", "mixed", "no PatientID", "unbound any"],
)
def test_check_study(scope: RetrievalScope, answer: list[dict[str, Any]], expect: Why | None) -> None:
    decision = check_study(scope, answer)
    if expect is None:
        assert decision is scope
    else:
        assert isinstance(decision, Refused) and decision.why is expect
        assert decision.status == (404 if expect is Why.STUDY_NOT_FOUND else 403)
        assert isinstance(decision.error(), NotFound if expect is Why.STUDY_NOT_FOUND else Forbidden)
        assert "MRN-2" not in decision.message


def fixed(outcome: Outcome, allowed: tuple[str, ...] = (), refused: tuple[str, ...] = ()) -> StudyPolicy:
    """A policy that answers ``outcome`` for every study."""
    known = bool(allowed or refused)

    def policy(study: dict[str, Any], series: Sequence[dict[str, Any]]) -> StudyDecision:
        return StudyDecision(STUDY, outcome, allowed, refused, "test", series_known=known)

    return policy


ON_SERIES = replace(BOUND, series_uid="1.2.3.1")
ON_OTHER_SERIES = replace(BOUND, series_uid="1.2.3.2")
PARTIAL = fixed("partial", ("1.2.3.1",), ("1.2.3.2",))


@pytest.mark.parametrize(
    ("scope", "policy", "allowed"),
    [
        (BOUND, fixed("allow"), True),
        (ON_SERIES, fixed("allow"), True),
        (BOUND, fixed("deny"), False),
        (ON_SERIES, fixed("deny"), False),
        (BOUND, PARTIAL, False),  # never a partial study as a whole
        (ON_SERIES, PARTIAL, True),
        (ON_OTHER_SERIES, PARTIAL, False),
    ],
    ids=[
        "allow",
        "allow series",
        "deny",
        "deny series",
        "partial whole",
        "partial allowed",
        "partial refused",
    ],
)
def test_a_study_policy_plugs_into_check_study(
    scope: RetrievalScope, policy: StudyPolicy, allowed: bool
) -> None:
    decision = check_study(scope, [study()], policy)
    # a whole-study request of a partly allowed study is refused as PARTIAL_STUDY (403 partial_study)
    refusal = Why.PARTIAL_STUDY if scope is BOUND and policy is PARTIAL else Why.POLICY
    assert (decision is scope) if allowed else (isinstance(decision, Refused) and decision.why is refusal)


def test_the_tenant_policy_of_issue_11_fits_the_hook() -> None:
    policy = parse_policy({"default": "allow", "rules": [{"effect": "deny", "when": {"modality": ["US"]}}]})
    requester = Requester("app", None, frozenset({"patient/ImagingStudy.rs"}), "p1")
    hook = partial(decide_study, policy, requester)
    ultrasound = {**study(), tags.ModalitiesInStudy: {"vr": "CS", "Value": ["US"]}}
    x_ray = {**study(), tags.ModalitiesInStudy: {"vr": "CS", "Value": ["DX"]}}
    assert check_study(BOUND, [x_ray], hook) is BOUND
    refused = check_study(BOUND, [ultrasound], hook)
    assert isinstance(refused, Refused) and refused.why is Why.POLICY
    assert check_study(BOUND, [study("MRN-2")], hook) == Refused(
        Why.MIXED_PATIENTS, "the archive files data of another patient under this study"
    )


# ---------------------------------------------------------------- the study guard's I/O


class Archive:
    """A source that answers study-level searches from a dict, and counts them."""

    def __init__(self, studies: dict[str, list[dict[str, Any]]]) -> None:
        self.studies = studies
        self.queries: list[StudyQuery] = []

    async def search(self, query: StudyQuery) -> list[StudyRecord]:
        self.queries.append(query)
        return [StudyRecord(s) for uid in query.study_uids for s in self.studies.get(uid, [])]

    async def retrieve(self, request: Any) -> Any:
        raise AssertionError("the guard never retrieves")

    async def aclose(self) -> None:
        return None


async def test_the_guard_asks_once_per_study_and_mrn_and_never_remembers_a_refusal() -> None:
    archive = Archive({STUDY: [study()], OTHER_STUDY: [study(uid=OTHER_STUDY), study("MRN-2", OTHER_STUDY)]})
    guard = StudyGuard()
    for _ in range(3):
        assert await guard.confirm(archive, BOUND) is BOUND
    assert len(archive.queries) == 1
    query = archive.queries[0]
    assert query.study_uids == (STUDY,) and not query.include_series and not query.include_instances
    assert query.mrn is None  # the study as the archive holds it, every patient's data
    mixed = replace(BOUND, study_uid=OTHER_STUDY)
    for _ in range(2):
        refused = await guard.confirm(archive, mixed)
        assert isinstance(refused, Refused) and refused.why is Why.MIXED_PATIENTS
    assert len(archive.queries) == 3
    assert await guard.confirm(archive, UNBOUND) is UNBOUND and len(archive.queries) == 3  # nothing to check


async def test_the_guard_forgets_after_its_ttl() -> None:
    archive = Archive({STUDY: [study()]})
    now = [0.0]
    guard = StudyGuard(ttl=300, clock=lambda: now[0])
    assert await guard.confirm(archive, BOUND) is BOUND
    now[0] = 299.0
    assert await guard.confirm(archive, BOUND) is BOUND and len(archive.queries) == 1
    now[0] = 300.0
    archive.studies[STUDY].append(study("MRN-2"))  # the archive changed meanwhile
    refused = await guard.confirm(archive, BOUND)
    assert isinstance(refused, Refused) and refused.why is Why.MIXED_PATIENTS and len(archive.queries) == 2


def test_no_study_named_means_the_bindings_own_study() -> None:
    """QIDO-RS ``/studies`` under an Endpoint names no study: it asks about the binding's own."""
    own = decide_retrieval(OPEN, binding(None, None), RetrievalRequest("t", None), DEBUG, NOW)
    assert isinstance(own, RetrievalScope) and own.study_uid == STUDY
    elsewhere = decide_retrieval(
        OPEN, binding(None, None, tenant="u"), RetrievalRequest("t", None), DEBUG, NOW
    )
    assert isinstance(elsewhere, Refused) and elsewhere.why is Why.OTHER_TENANT
