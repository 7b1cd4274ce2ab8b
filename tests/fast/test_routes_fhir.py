"""ImagingStudy search, HTTP in and HTTP out, against fakes (SMART Imaging Access IG; FHIR R4
search): who may search, the searchset Bundle, paging, ``_include``, strict handling."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from smart_imaging.errors import UpstreamError, UpstreamTimeout

from .conftest import A_UIDS, B_UID, BASE, World

FHIR_JSON = "application/fhir+json"


def outcome(response: Any, status: int, code: str) -> str:
    """Assert an OperationOutcome answer; returns its diagnostics text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    OperationOutcome.model_validate(body)
    (issue,) = body["issue"]
    assert issue["severity"] == "error" and issue["code"] == code
    return str(issue.get("diagnostics", "")) + str(issue.get("details", ""))


def study_ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


async def test_a_search_for_the_tokens_patient_answers_their_studies_as_a_searchset(world: World) -> None:
    response = await world.search({"patient": "pat-a"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == 5
    assert study_ids(bundle) == A_UIDS  # newest first; never the study of MRN-B
    assert B_UID not in response.text
    entry = bundle["entry"][0]
    assert entry["fullUrl"] == f"{BASE}/a/fhir/ImagingStudy/{A_UIDS[0]}"
    resource = entry["resource"]
    assert resource["subject"] == {"reference": "Patient/pat-a"}
    assert {"system": "urn:dicom:uid", "value": f"urn:oid:{A_UIDS[0]}"} in resource["identifier"]
    assert resource["started"].startswith("2024-01-05")
    assert resource["numberOfSeries"] == 1 and resource["modality"][0]["code"] == "CT"
    (endpoint,) = resource["contained"]
    assert resource["endpoint"] == [{"reference": f"#{endpoint['id']}"}]
    assert endpoint["resourceType"] == "Endpoint" and endpoint["status"] == "active"
    assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
    assert endpoint["address"].startswith(f"{BASE}/a/wado/")
    addresses = {e["resource"]["contained"][0]["address"] for e in bundle["entry"]}
    assert len(addresses) == 5  # one capability per study


async def test_another_patient_is_403_and_the_archive_is_not_asked(world: World) -> None:
    outcome(await world.search({"patient": "pat-b"}), 403, "forbidden")
    outcome(await world.search({"patient": "Patient/pat-b"}), 403, "forbidden")
    outcome(await world.search([("patient", "pat-a"), ("patient", "pat-b")]), 403, "forbidden")
    assert world.source.searches == []


async def test_a_search_naming_no_patient_is_403_not_an_empty_bundle(world: World) -> None:
    outcome(await world.search(), 403, "forbidden")
    outcome(await world.search({"identifier": f"urn:oid:{A_UIDS[0]}"}), 403, "forbidden")
    outcome(await world.search({"unknown-param": "pat-a"}), 403, "forbidden")  # ignored: names none
    assert world.source.searches == []


async def test_a_token_without_patient_context_is_403(world: World) -> None:
    outcome(await world.search({"patient": "pat-a"}, token="token-none"), 403, "forbidden")
    assert world.source.searches == []


async def test_no_token_is_401_with_a_bearer_challenge(world: World) -> None:
    missing = await world.search({"patient": "pat-a"}, token=None)
    outcome(missing, 401, "login")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    invalid = await world.search({"patient": "pat-a"}, token="forged")
    outcome(invalid, 401, "login")
    assert 'error="invalid_token"' in invalid.headers["www-authenticate"]
    assert "forged" not in invalid.text


async def test_patient_identifier_must_be_the_tokens_patient(world: World) -> None:
    own = await world.search({"patient.identifier": "urn:test:mrn|MRN-A"})
    assert own.status_code == 200 and study_ids(own.json()) == A_UIDS
    outcome(await world.search({"patient.identifier": "urn:test:mrn|MRN-B"}), 403, "forbidden")


async def test_identifier_narrows_to_one_study(world: World) -> None:
    response = await world.search({"patient": "pat-a", "identifier": f"urn:oid:{A_UIDS[2]}"})
    assert response.status_code == 200
    assert study_ids(response.json()) == [A_UIDS[2]] and response.json()["total"] == 1
    other = await world.search({"patient": "pat-a", "identifier": f"urn:oid:{B_UID}"})
    assert other.status_code == 200 and other.json()["total"] == 0 and "entry" not in other.json()


async def test_count_and_offset_page_through_every_study_once(world: World) -> None:
    pages, url = [], "/a/fhir/ImagingStudy?patient=pat-a&_count=2"
    while url:
        response = await world.client.get(url, headers=world.headers())
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert bundle["total"] == 5
        pages.append(study_ids(bundle))
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["self"].startswith(f"{BASE}/a/fhir/ImagingStudy?")
        url = links.get("next", "").removeprefix(BASE)
        assert len(pages) <= 3
    assert pages == [A_UIDS[0:2], A_UIDS[2:4], A_UIDS[4:]]
    last = await world.search({"patient": "pat-a", "_count": "2", "_offset": "4"})
    assert study_ids(last.json()) == A_UIDS[4:]
    assert "next" not in {link["relation"] for link in last.json()["link"]}


async def test_next_link_keeps_the_search_and_moves_the_offset(world: World) -> None:
    bundle = (await world.search({"patient": "pat-a", "_count": "3"})).json()
    (next_url,) = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
    query = parse_qs(urlsplit(next_url).query)
    assert query == {"patient": ["pat-a"], "_count": ["3"], "_offset": ["3"]}


async def test_count_zero_gives_the_total_only(world: World) -> None:
    bundle = (await world.search({"patient": "pat-a", "_count": "0"})).json()
    assert bundle["total"] == 5 and "entry" not in bundle


@pytest.mark.parametrize("name", ["_count", "_offset"])
async def test_malformed_paging_numbers_are_400(world: World, name: str) -> None:
    for value in ("abc", "-1", "1.5", "\u0663"):
        outcome(await world.search({"patient": "pat-a", name: value}), 400, "invalid")


async def test_include_endpoint_lists_endpoints_as_included_entries(world: World) -> None:
    response = await world.search({"patient": "pat-a", "_include": "ImagingStudy:endpoint"})
    bundle = response.json()
    Bundle.model_validate(bundle)
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert len(matches) == 5 and len(included) == 5 and bundle["total"] == 5
    by_id = {e["resource"]["id"]: e for e in included}
    for entry in matches:
        assert "contained" not in entry["resource"]
        (reference,) = entry["resource"]["endpoint"]
        # IG "Finding studies" (F4): response-local Endpoints, fullUrl urn:uuid, the same value referenced
        kind, _, endpoint_id = reference["reference"].rpartition(":")
        assert kind == "urn:uuid"
        endpoint = by_id[endpoint_id]
        assert endpoint["fullUrl"] == reference["reference"]
        assert endpoint["resource"]["address"].startswith(f"{BASE}/a/wado/")
        assert entry["fullUrl"] == f"{BASE}/a/fhir/ImagingStudy/{entry['resource']['id']}"


async def test_unknown_parameters_are_400_only_under_strict_handling(world: World) -> None:
    lenient = await world.search({"patient": "pat-a", "color": "blue"})
    assert lenient.status_code == 200 and lenient.json()["total"] == 5
    strict = await world.search({"patient": "pat-a", "color": "blue"}, Prefer="handling=strict")
    assert "color" in outcome(strict, 400, "invalid")
    modifier = await world.search({"patient": "pat-a", "started:exact": "2024"}, Prefer="handling=strict")
    outcome(modifier, 400, "invalid")
    assert world.source.searches and len(world.source.searches) == 1  # only the lenient one searched


async def test_archive_failures_are_502_and_504_operation_outcomes(world: World) -> None:
    world.source.search_error = UpstreamError("the archive answered 500")
    outcome(await world.search({"patient": "pat-a"}), 502, "exception")
    world.source.search_error = UpstreamTimeout("the archive did not answer in time")
    outcome(await world.search({"patient": "pat-a"}), 504, "timeout")


async def test_a_delayed_tenant_answers_503_with_retry_after(world: World) -> None:
    response = await world.search({"patient": "pat-a"}, tenant="slow")
    outcome(response, 503, "transient")
    assert 3500 <= int(response.headers["retry-after"]) <= 3600
    assert world.source.searches == []


async def test_capability_statement_and_smart_configuration(world: World) -> None:
    world.authorizer.ehr = {
        "authorization_endpoint": "https://ehr.test/authorize",
        "token_endpoint": "https://ehr.test/token",
    }
    metadata = await world.client.get("/a/fhir/metadata")
    assert metadata.status_code == 200 and metadata.headers["content-type"].startswith(FHIR_JSON)
    statement = metadata.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"] for rest in statement["rest"] for r in rest.get("resource", [])}
    assert "ImagingStudy" in resources
    config = (await world.client.get("/a/fhir/.well-known/smart-configuration")).json()
    assert config["authorization_endpoint"] == "https://ehr.test/authorize"
    assert config["token_endpoint"] == "https://ehr.test/token"
