"""Audit (issue 11.5; IG authorization-patterns.md "Audit records": "Record the client, any
represented user, the patient, and the study. Correlate the presented token, any capability, and
the retrieval decision without exposing credentials in logs").

Each test starts its own imaging server (same tenants, ``SMART_IMAGING_AUDIT=file:...``), uses it
as a viewer would, then stops it: shutdown emits the open retrieval windows, so the file then holds
every event of the visit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from smart_imaging.app import create_app
from smart_imaging.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.servers import ServerThread

from .studies import STUDIES
from .test_retrieving_images import ALL_SYNTAXES, METADATA, study_url
from .world import World, endpoints

pytestmark = pytest.mark.integration


class AuditedServer:
    def __init__(self, world: World, path: Path) -> None:
        self.path = path
        app = create_app(Settings(key=TEST_KEY, audit=f"file:{path}"), tenants=world.configs)
        self.server = ServerThread(app).start()
        self.base = self.server.url

    def events(self) -> list[dict[str, Any]]:
        """Stop the server (emitting open windows) and read every event."""
        self.server.stop()
        return [json.loads(line) for line in self.path.read_text().splitlines()]


@pytest.fixture
def audited(world: World, tmp_path: Path) -> Iterator[AuditedServer]:
    server = AuditedServer(world, tmp_path / "audit.jsonl")
    yield server
    server.server.stop()


def search(world: World, base: str, token: str, **params: str) -> dict[str, Any]:
    old, world.base = world.base, base
    try:
        response = world.search("hospital", token, **params)
    finally:
        world.base = old
    return dict(response.json()) if response.status_code == 200 else {"status": response.status_code}


def entity_values(event: dict[str, Any]) -> list[str]:
    found = []
    for entity in event["entity"]:
        what = entity.get("what", {})
        found.append(what.get("reference") or what.get("identifier", {}).get("value", ""))
    return found


def test_G1_one_viewer_visit_is_one_search_event_and_one_event_per_study_opened(
    world: World, audited: AuditedServer
) -> None:
    """Launch (the token), search, open two studies with many requests each: 3 events."""
    token = world.token("maya")
    bundle = search(world, audited.base, token, patient="maya", _include="ImagingStudy:endpoint")
    addresses = endpoints(bundle)
    ankle, knee = STUDIES["ankle"], STUDIES["knee"]
    ankle_url = study_url(addresses[ankle.uid], "ankle")
    assert world.get(ankle_url, token, ALL_SYNTAXES).status_code == 200
    for key in ("ap", "lateral"):
        assert (
            world.get(f"{ankle_url}/series/{ankle.series_uid(key)}/metadata", token, METADATA).status_code
            == 200
        )
    knee_url = study_url(addresses[knee.uid], "knee")
    for _ in range(5):
        assert world.get(f"{knee_url}/metadata", token, METADATA).status_code == 200
    events = audited.events()
    for event in events:
        AuditEvent.model_validate(event)
    searches = [e for e in events if e["subtype"][0]["code"] == "search-type"]
    retrievals = [e for e in events if e["subtype"][0]["code"] == "read"]
    assert len(events) == 3 and len(searches) == 1 and len(retrievals) == 2
    (found,) = searches
    assert found["outcome"] == "0" and found["action"] == "E"
    assert {f"urn:oid:{STUDIES[k].uid}" for k in ("ankle", "pelvis", "knee")} <= set(entity_values(found))
    by_study = {v: e for e in retrievals for v in entity_values(e) if v.startswith("urn:oid:")}
    assert set(by_study) == {f"urn:oid:{ankle.uid}", f"urn:oid:{knee.uid}"}
    details = {d["type"]: d["valueString"] for d in by_study[f"urn:oid:{ankle.uid}"]["entity"][1]["detail"]}
    assert details["requests"] == "3"
    assert {
        d["valueString"]
        for d in by_study[f"urn:oid:{ankle.uid}"]["entity"][1]["detail"]
        if d["type"] == "SeriesInstanceUID"
    } == set(ankle.series_uids.values())
    for event in events:
        app, user = event["agent"]
        assert app["who"]["identifier"]["value"] == "app"  # the client
        assert user["who"]["reference"] == "Patient/maya" and user["requestor"] is True  # the user
        assert "Patient/maya" in entity_values(event)  # the patient
        assert app["policy"] == user["policy"] and app["policy"][0].startswith("urn:uuid:")  # correlation
        assert event["source"]["site"] == "hospital"
    assert len({e["agent"][0]["policy"][0] for e in events}) == 1  # one token, one correlation id
    text = audited.path.read_text()
    assert token not in text and token[:16] not in text
    assert all(address.rsplit("/", 1)[1] not in text for address in addresses.values())  # nor capabilities


def test_G1_refusals_are_audited_with_their_reason(world: World, audited: AuditedServer) -> None:
    elena, other = world.token("elena-for-maya"), world.token("maya")
    assert search(world, audited.base, elena, patient="123") == {"status": 403}
    bundle = search(world, audited.base, elena, patient="maya")
    knee_url = study_url(endpoints(bundle)[STUDIES["knee"].uid], "knee")
    assert world.get(knee_url, elena, ALL_SYNTAXES).status_code == 403  # partial study
    assert world.get(f"{knee_url}/metadata", other, METADATA).status_code == 403  # another token
    events = audited.events()
    refused = [e for e in events if e["outcome"] == "4"]
    reasons = " | ".join(e.get("outcomeDesc", "") for e in refused)
    assert len(refused) == 3
    assert "another patient" in reasons or "other than" in reasons
    assert "only some series" in reasons and "another access token" in reasons
    users = {e["agent"][1]["who"]["reference"] for e in refused}
    assert users == {"RelatedPerson/elena", "Patient/maya"}
    text = audited.path.read_text()
    assert elena not in text and other not in text


def test_audit_correlation_ids_differ_per_token_and_never_reveal_it(
    world: World, audited: AuditedServer
) -> None:
    first, second = world.token("maya"), world.token("maya")
    search(world, audited.base, first, patient="maya")
    search(world, audited.base, second, patient="maya")
    events = audited.events()
    ids = [e["agent"][0]["policy"][0] for e in events]
    assert len(events) == 2 and ids[0] != ids[1]
    assert first not in json.dumps(events) and second not in json.dumps(events)
