"""Property-based hostile requests against a running server and a real Orthanc (issue 13).

Whatever the path, query, headers, binding or ``/dyn/`` config: never a 500 (nor a status of 600
or more), the whole answer within 5 s, no traceback, no secret, nothing of another patient, no
error logged, and the route's JSON shape on errors. Bounded example counts and a fixed seed keep
this in the default suite; ``bench/fuzz_hostile.py`` runs the same properties for longer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st

from smart_imaging.app import create_app
from smart_imaging.config.loader import parse_config
from smart_imaging.settings import Settings

from . import hostile
from .conftest import ServerThread
from .hostile_world import (
    DEADLINE,
    LogCapture,
    Outcome,
    Probe,
    Target,
    discover,
    encode,
    problems,
    send,
    server_settings,
    tenants,
)
from .orthanc import Orthanc
from .sample_dicom import SampleData


@dataclass
class World:
    target: Target
    client: httpx.Client
    logs: LogCapture

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"World({self.target.base})"

    def check(self, probe: Probe) -> Outcome:
        out = send(self.client, self.target.base, probe, self.logs)
        if out.unsendable:
            reject()
        found = problems(probe, out, self.target)
        assert not found, (
            f"{probe.describe()}\n-> {out.status} {out.headers.get('content-type', '')} in {out.seconds:.2f} s: "
            + "; ".join(found)
            + f"\n   body: {out.body[:300]!r}"
        )
        return out


@pytest.fixture(scope="module")
def world(orthanc: Orthanc, sample_data: SampleData) -> Iterator[World]:
    configs = {name: parse_config(cfg) for name, cfg in tenants(orthanc).items()}
    server = ServerThread(create_app(Settings(**server_settings(orthanc)), tenants=configs)).start()
    logs = LogCapture().install()
    try:
        with httpx.Client(timeout=DEADLINE) as client:
            yield World(discover(server.url, orthanc, sample_data), client, logs)
    finally:
        logs.remove()
        server.stop()


def bounded(examples: int) -> settings:
    """A fixed seed, no example database, no shrinking: the same requests and a bounded time each run."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def test_the_world_answers_valid_requests_with_patient_a_data(world: World) -> None:
    """The probes start from real addresses: a valid one reaches the archive and passes every check."""
    target = world.target
    for prefix in ("a", "d", target.dyn):
        study = target.studies_a[0]
        out = world.check(
            Probe("GET", f"/{prefix}/wado/{target.bindings[prefix][study]}/studies/{study}/metadata")
        )
        assert out.status == 200 and json.loads(out.body)[0]["0020000D"]["Value"] == [study]
        out = world.check(Probe("GET", f"/{prefix}/fhir/ImagingStudy?patient=pat-a"))
        assert {e["resource"]["id"] for e in json.loads(out.body)["entry"]} == set(target.studies_a)
    assert target.foreign and target.studies_b and target.bindings["b"]


def test_the_checker_flags_what_it_must(world: World) -> None:
    target, probe = world.target, Probe("GET", "/a/fhir/ImagingStudy?patient=pat-a")
    bundle = b'{"resourceType": "Bundle"}'
    cases = {
        "status 500": Outcome(500, {}, b'{"resourceType": "OperationOutcome", "issue": [{}]}'),
        "took": Outcome(200, {}, bundle, seconds=DEADLINE + 1),
        "traceback": Outcome(400, {}, b'Traceback (most recent call last):\n  File "x.py", line 1'),
        "secret": Outcome(200, {}, bundle[:-1] + f', "x": "{target.secrets[0]}"}}'.encode()),
        "other patient": Outcome(200, {}, bundle[:-1] + f', "x": "{target.foreign[0]}"}}'.encode()),
        "internal address": Outcome(200, {"content-location": f"http://{target.internal[0]}/x"}, bundle),
        "not an OperationOutcome": Outcome(404, {}, b'{"error": "x", "message": "y"}'),
        "server logged": Outcome(200, {}, bundle, logged=["smart_imaging: unexpected error"]),
        "transport": Outcome(200, {}, bundle, error="transport: RemoteProtocolError"),
    }
    for expected, out in cases.items():
        assert any(expected in p for p in problems(probe, out, target)), expected
    assert problems(probe, Outcome(200, {}, bundle), target) == []
    named = Probe("GET", f"/a/fhir/ImagingStudy?identifier=urn:oid:{target.studies_b[0]}")
    echo = Outcome(
        400, {}, json.dumps({"resourceType": "OperationOutcome", "issue": [target.studies_b[0]]}).encode()
    )
    assert problems(named, echo, target) == []  # echoing what the client sent is no leak


def known_cases(target: Target) -> list[Probe]:
    """The hostile inputs issue 13 measured, and their neighbours, as fixed regression probes."""
    study, b_study = target.studies_a[0], target.studies_b[0]
    series, sop = target.instances[study][0]
    wado = f"/a/wado/{target.bindings['a'][study]}/studies/{study}"
    frames = f"{wado}/series/{series}/instances/{sop}/frames"
    search = "/a/fhir/ImagingStudy?patient=pat-a"
    probes = [
        Probe("GET", f"{search}&{p}={v}") for p in ("_count", "_offset") for v in ("%C2%B2", "%E2%91%A0")
    ]
    for path, media in (
        (wado, b'type="application/dicom"'),
        (f"{frames}/1", b"type=application/octet-stream"),
    ):
        for syntax in (b"\xc3\xa9", b"\xe9", b"*"):
            accept = b"multipart/related; " + media + b"; transfer-syntax=" + syntax
            probes.append(Probe("GET", path, (("Accept", accept),)))
    for field, value in (
        ("images.delay", {"lookupUntil": "Infinity"}),
        ("bindingTtl", "NaN"),
        ("images.timeout", "1e999"),
    ):
        raw = (
            {k: hostile.RAW + v for k, v in value.items()} if isinstance(value, dict) else hostile.RAW + value
        )
        config = encode(hostile.mutated(target.valid_dyn, [(field, raw)]))
        probes.append(
            Probe("GET", f"/dyn/{config}/fhir/ImagingStudy?patient=pat-a", about_a=False, static=False)
        )
    probes += [
        Probe("GET", f"{frames}/{','.join(['1'] * 10001)}"),
        Probe("GET", f"/a/wado/{target.bindings['b'][b_study]}/studies/{b_study}/metadata"),
        Probe("GET", f"{wado}/..%2F..%2F{b_study}/metadata"),
        Probe("GET", f"{wado}/%2e%2e/%2e%2e/metadata"),
    ]
    return probes


def test_known_hostile_cases(world: World, subtests: pytest.Subtests) -> None:
    for probe in known_cases(world.target):
        with subtests.test(probe.label()):
            world.check(probe)


@bounded(200)
@given(data=st.data())
def test_hostile_wado_paths_and_bindings(world: World, data: st.DataObject) -> None:
    world.check(data.draw(hostile.wado_probe(world.target), label="probe"))


@bounded(150)
@given(data=st.data())
def test_hostile_searches(world: World, data: st.DataObject) -> None:
    world.check(data.draw(hostile.search_probe(world.target), label="probe"))


@bounded(150)
@given(data=st.data())
def test_hostile_dynamic_configs(world: World, data: st.DataObject) -> None:
    world.check(data.draw(hostile.dyn_probe(world.target), label="probe"))


@bounded(100)
@given(data=st.data())
def test_hostile_paths_and_raw_request_lines(world: World, data: st.DataObject) -> None:
    world.check(data.draw(hostile.path_probe(world.target), label="probe"))
