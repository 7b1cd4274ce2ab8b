"""The study policy service (``services.study_policy``) with a fake source and a fake decision
point (httpx MockTransport); the real decision point over HTTP is in tests/ig/test_decision_point.py."""

from __future__ import annotations

import json

import httpx
import pytest

from smart_imaging.access.policy import Requester
from smart_imaging.access.retrieval import RetrievalScope
from smart_imaging.config.policy import parse_policy
from smart_imaging.errors import Unavailable
from smart_imaging.services.study_policy import StudyPolicyService
from smart_imaging.sources import StudyQuery
from tests.support.fakes import FakeSource, study

MAYA = Requester("app", "Patient/maya", frozenset({"patient/ImagingStudy.rs"}), "maya")
NO_US = {"default": "allow", "rules": [{"effect": "deny", "when": {"modality": ["US"]}}]}


def scope(uid: str) -> RetrievalScope:
    return RetrievalScope("t", uid, None, "maya", "MRN-1")


async def test_search_results_drop_refused_studies() -> None:
    source = FakeSource([study("1.1", "MRN-1", modality="CT"), study("1.2", "MRN-1", modality="US")])
    service = StudyPolicyService(parse_policy(NO_US), tenant="t")
    records = await source.search(StudyQuery("MRN-1"))
    shown = await service.visible(MAYA, records)
    assert [r.study["0020000D"]["Value"][0] for r, _ in shown] == ["1.1"]


async def test_a_retrieval_decision_costs_one_archive_search_per_token_and_study() -> None:
    source = FakeSource([study("1.1", "MRN-1", modality="CT")])
    service = StudyPolicyService(parse_policy(NO_US), tenant="t")
    for _ in range(50):
        decision = await service.for_retrieval(MAYA, "digest-a", source, scope("1.1"))
        assert decision.complete
    assert len(source.searches) == 1
    assert source.searches[0].study_uids == ("1.1",) and source.searches[0].mrn == "MRN-1"
    await service.for_retrieval(MAYA, "digest-b", source, scope("1.1"))
    assert len(source.searches) == 2  # another token decides afresh


async def test_an_unknown_study_is_refused() -> None:
    service = StudyPolicyService(parse_policy(NO_US), tenant="t")
    assert not (await service.for_retrieval(MAYA, "d", FakeSource([]), scope("9.9"))).allowed


def streamed(body: bytes) -> httpx.Response:
    """An answer the client can stream (it reads decision bodies with a size bound)."""
    return httpx.Response(200, stream=httpx.ByteStream(body), headers={"Content-Type": "application/json"})


def decision_point(handler: httpx.MockTransport) -> tuple[StudyPolicyService, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=handler)
    policy = parse_policy(
        {"default": "allow", "decisionPoint": {"url": "http://pdp.test/decide", "cacheTtl": 0}}
    )
    return StudyPolicyService(policy, tenant="t", http=http), http


async def test_the_decision_point_must_permit_too_and_failures_are_503() -> None:
    asked: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        asked.append(body)
        verdict = "deny" if body["study"]["uid"] == "1.2" else "permit"
        return streamed(json.dumps({"decision": verdict}).encode())

    service, http = decision_point(httpx.MockTransport(answer))
    source = FakeSource([study("1.1", "MRN-1"), study("1.2", "MRN-1")])
    shown = await service.visible(MAYA, await source.search(StudyQuery("MRN-1")))
    assert [r.study["0020000D"]["Value"][0] for r, _ in shown] == ["1.1"] and len(asked) == 2
    assert service.series_needed  # a decision point is told the series
    broken, http2 = decision_point(httpx.MockTransport(lambda r: streamed(b"<html>")))
    with pytest.raises(Unavailable):
        await broken.visible(MAYA, await source.search(StudyQuery("MRN-1")))
    with pytest.raises(Unavailable):
        await broken.for_retrieval(MAYA, "d", source, scope("1.1"))
    await http.aclose()
    await http2.aclose()


def test_extra_fields_name_the_confidentiality_attribute() -> None:
    with_code = {"default": "allow", "confidentialityAttribute": "ConfidentialityCode"}
    assert StudyPolicyService(parse_policy(with_code), tenant="t").extra_fields == ("00401008",)
    assert StudyPolicyService(parse_policy(NO_US), tenant="t").extra_fields == ()
    assert not StudyPolicyService(parse_policy(NO_US), tenant="t").series_needed
