"""The smart-on-fhir authorizers against a real oidc-provider and the test EHR (no mocks)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from authorizers import build
from oidc_server import OidcServer, free_port
from smart_ehr import EhrState

from smart_imaging.auth.base import AccessGrant, AuthRequest
from smart_imaging.config.tenant import SmartAuthorization
from smart_imaging.errors import (
    Forbidden,
    InsufficientScope,
    SmartImagingError,
    Unauthorized,
    Unavailable,
    UpstreamError,
)


async def authorize(authorizer: Any, token: str | None, patient: str | None = None) -> AccessGrant:
    return await authorizer.authorize(AuthRequest(token, "t", patient))


@pytest.mark.parametrize("auth_kind", ["private_key_jwt", "client_secret_basic", "bearer"])
async def test_valid_token_grants_its_patient(
    auth_kind: str, oidc: OidcServer, ehr: EhrState, smart_config, http
) -> None:
    overrides: dict[str, Any] = {"introspectionAuth": auth_kind}
    if auth_kind == "client_secret_basic":
        overrides["client"] = {
            **smart_config()["client"],
            "client_id": "imaging-secret",
            "client_secret": oidc.secrets["imaging-secret"],
            "jwkPrivate": None,
        }
        overrides["type"] = "smart-on-fhir-with-meditech-bugfixes"
        overrides["allowInsecurePatientFromRequest"] = True
    if auth_kind == "bearer":
        ehr.introspection = "proxy"  # the EHR's own introspection, authenticated by our backend token
    authorizer = build(smart_config(**overrides), http)
    token = oidc.app_token("pat-a")["access_token"]
    grant = await authorize(authorizer, token, "pat-a")
    assert grant.patient_id == "pat-a"
    assert grant.scopes == {"patient/ImagingStudy.rs"} and grant.client_id == "app"
    patient = await authorizer.patient(grant)
    assert patient is not None and patient["identifier"][0]["value"] == "MRN-A"
    if auth_kind == "bearer":
        assert ehr.counts["introspect"] == 1  # the EHR verified our backend token itself
    if auth_kind != "client_secret_basic":
        assert ehr.patient_readers == ["imaging-server"]  # read with our backend token


async def test_rs384_backend_client(
    oidc: OidcServer, ehr: EhrState, smart_config, backend_keys, http
) -> None:
    client = {"client_id": "imaging-server-rs", "jwkPrivate": backend_keys["rs384"]}
    authorizer = build(smart_config(client=client), http)
    before = oidc.stats()["token"].get("imaging-server-rs", 0)
    grant = await authorize(authorizer, oidc.app_token("pat-b")["access_token"])
    assert grant.patient_id == "pat-b"
    assert (await authorizer.patient(grant))["id"] == "pat-b"
    assert oidc.stats()["token"].get("imaging-server-rs", 0) == before + 1


async def test_backend_token_is_cached_across_tokens(
    oidc: OidcServer, ehr: EhrState, smart_config, http
) -> None:
    ehr.introspection = "proxy"
    authorizer = build(smart_config(introspectionAuth="bearer"), http)
    before = oidc.stats()["token"].get("imaging-server", 0)
    for patient in ("pat-a", "pat-b", "pat-a"):
        grant = await authorize(authorizer, oidc.app_token(patient)["access_token"])
        await authorizer.patient(grant)
    assert oidc.stats()["token"].get("imaging-server", 0) == before + 1
    assert authorizer.backend.requests == 1


async def test_missing_token_is_a_bare_challenge(smart_config, http) -> None:
    authorizer = build(smart_config(), http)
    with pytest.raises(Unauthorized) as caught:
        await authorize(authorizer, None)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer realm="smart-imaging"'


async def test_unknown_token_is_invalid(smart_config, http) -> None:
    authorizer = build(smart_config(), http)
    with pytest.raises(Unauthorized) as caught:
        await authorize(authorizer, "not-a-token-the-server-issued")
    assert 'error="invalid_token"' in caught.value.headers["WWW-Authenticate"]


async def test_revoked_token_is_refused_once_the_cache_lets_go(oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(cacheTtl=0, negativeCacheTtl=0), http)
    token = oidc.app_token("pat-a")["access_token"]
    assert (await authorize(authorizer, token)).patient_id == "pat-a"
    oidc.revoke(token)
    with pytest.raises(Unauthorized):
        await authorize(authorizer, token)


async def test_expired_token_is_refused(oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(), http)
    token = oidc.app_token("pat-a", client="app-short")
    assert token["expires_in"] <= 2
    await asyncio.sleep(token["expires_in"] + 1)
    with pytest.raises(Unauthorized) as caught:
        await authorize(authorizer, token["access_token"])
    assert caught.value.status == 401


async def test_positive_decision_lives_no_longer_than_the_token(oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(cacheTtl=600), http)
    token = oidc.app_token("pat-a", client="app-short")
    assert (await authorize(authorizer, token["access_token"])).patient_id == "pat-a"
    await asyncio.sleep(token["expires_in"] + 1)
    with pytest.raises(Unauthorized):
        await authorize(authorizer, token["access_token"])


@pytest.mark.parametrize(
    "scope",
    [
        "openid launch/patient patient/Observation.rs",
        "openid launch/patient user/*.rs",
        "openid launch/patient system/Patient.read",
    ],
)
async def test_token_without_imaging_scope_is_403(scope: str, oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(), http)
    with pytest.raises(InsufficientScope) as caught:
        await authorize(authorizer, oidc.app_token("pat-a", scope)["access_token"])
    assert caught.value.status == 403
    assert 'error="insufficient_scope"' in caught.value.headers["WWW-Authenticate"]


async def test_token_without_patient_is_403(oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(), http)
    with pytest.raises(Forbidden) as caught:
        await authorize(authorizer, oidc.app_token(None)["access_token"])
    assert caught.value.status == 403 and not isinstance(caught.value, InsufficientScope)


async def test_disable_authz_checks_still_needs_an_active_token(oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(disableAuthzChecks=True), http)
    grant = await authorize(authorizer, oidc.app_token(None, "openid user/*.rs")["access_token"])
    assert grant.disable_authz_checks and grant.patient_id is None
    with pytest.raises(Unauthorized):
        await authorize(authorizer, "bogus")


async def test_issuer_and_audience_are_checked_when_configured(
    oidc: OidcServer, ehr: EhrState, smart_config, http
) -> None:
    token = oidc.app_token("pat-a")["access_token"]
    good = build(smart_config(audience=ehr.fhir_base, issuer=oidc.issuer), http)
    assert (await authorize(good, token)).patient_id == "pat-a"
    for overrides in (
        {"audience": "https://elsewhere.example/fhir"},
        {"issuer": "https://other-issuer.example"},
    ):
        with pytest.raises(Unauthorized):
            await authorize(build(smart_config(**overrides), http), token)


async def test_one_introspection_per_token_even_when_concurrent(oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(), http)
    token = oidc.app_token("pat-a")["access_token"]
    before = oidc.introspections("imaging-server")
    grants = await asyncio.gather(*(authorize(authorizer, token) for _ in range(40)))
    grants += [await authorize(authorizer, token) for _ in range(20)]
    assert {g.patient_id for g in grants} == {"pat-a"}
    assert oidc.introspections("imaging-server") == before + 1


async def test_negative_decisions_are_cached_briefly(oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(negativeCacheTtl=30), http)
    before = oidc.introspections("imaging-server")
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await authorize(authorizer, "never-issued")
    assert oidc.introspections("imaging-server") == before + 1


async def test_cache_off_introspects_every_time(oidc: OidcServer, smart_config, http) -> None:
    authorizer = build(smart_config(cacheTtl=0), http)
    token = oidc.app_token("pat-a")["access_token"]
    before = oidc.introspections("imaging-server")
    for _ in range(3):
        await authorize(authorizer, token)
    assert oidc.introspections("imaging-server") == before + 3


async def test_building_does_no_io_and_discovery_is_cached(
    ehr: EhrState, oidc: OidcServer, smart_config, http
) -> None:
    authorizer = build(smart_config(), http)
    assert ehr.counts.get("smart-configuration", 0) == 0
    for patient in ("pat-a", "pat-b"):
        await authorize(authorizer, oidc.app_token(patient)["access_token"])
    assert ehr.counts["smart-configuration"] == 1
    assert (await authorizer.ehr_configuration())["token_endpoint"] == f"{oidc.issuer}/token"


async def test_config_endpoints_override_discovery(
    ehr: EhrState, oidc: OidcServer, smart_config, http
) -> None:
    ehr.faults["smart-configuration"] = "unavailable"
    authorizer = build(
        smart_config(
            tokenEndpoint=f"{oidc.issuer}/token", introspectionEndpoint=f"{oidc.issuer}/token/introspection"
        ),
        http,
    )
    assert (await authorize(authorizer, oidc.app_token("pat-a")["access_token"])).patient_id == "pat-a"
    assert ehr.counts.get("smart-configuration", 0) == 0


# ------------------------------------------------------------------ failures: 503 / 502, never a grant


@pytest.mark.parametrize(
    "endpoint, fault, error",
    [
        ("smart-configuration", "unavailable", Unavailable),
        ("smart-configuration", "slow", Unavailable),
        ("smart-configuration", "garbage", UpstreamError),
        ("smart-configuration", "wrong-shape", UpstreamError),
        ("smart-configuration", "error500", UpstreamError),
        ("smart-configuration", "missing", UpstreamError),
        ("introspect", "garbage", UpstreamError),
        ("introspect", "slow", Unavailable),
        ("introspect", "unavailable", Unavailable),
        ("introspect", "wrong-shape", UpstreamError),
    ],
)
async def test_ehr_failures_deny_with_503_or_502(
    endpoint: str, fault: str, error: type, ehr: EhrState, oidc: OidcServer, smart_config, http
) -> None:
    ehr.introspection = "proxy"
    ehr.faults[endpoint] = fault
    authorizer = build(smart_config(introspectionAuth="bearer", timeout=0.5), http)
    token = oidc.app_token("pat-a")["access_token"]
    with pytest.raises(error) as caught:
        await authorize(authorizer, token)
    assert caught.value.status in (502, 503)
    assert token not in caught.value.message
    if error is Unavailable:
        assert caught.value.headers["Retry-After"].isdigit()
    ehr.faults.clear()  # a transient failure is not cached: the next request succeeds
    assert (await authorize(authorizer, token)).patient_id == "pat-a"


@pytest.mark.parametrize(
    "fault, error",
    [
        ("unavailable", Unavailable),
        ("slow", Unavailable),
        ("garbage", UpstreamError),
        ("error500", UpstreamError),
    ],
)
async def test_patient_read_failures(
    fault: str, error: type, ehr: EhrState, oidc: OidcServer, smart_config, http
) -> None:
    authorizer = build(smart_config(timeout=0.5), http)
    grant = await authorize(authorizer, oidc.app_token("pat-a")["access_token"])
    ehr.faults["patient"] = fault
    with pytest.raises(error):
        await authorizer.patient(grant)


async def test_unreachable_ehr_is_503(smart_config, http, oidc: OidcServer) -> None:
    config = smart_config(fhirBaseUrl=f"http://127.0.0.1:{free_port()}/fhir")
    with pytest.raises(Unavailable):
        await authorize(build(config, http), oidc.app_token("pat-a")["access_token"])


async def test_backend_credentials_refused_is_502(oidc: OidcServer, smart_config, backend_keys, http) -> None:
    client = {"client_id": "imaging-server", "jwkPrivate": backend_keys["rs384"]}  # not its registered key
    authorizer = build(smart_config(client=client), http)
    with pytest.raises(UpstreamError) as caught:
        await authorize(authorizer, oidc.app_token("pat-a")["access_token"])
    assert caught.value.status == 502


# ------------------------------------------------------------------ vendor variants


async def test_epic_patient_from_sub_url_and_report_scope(
    oidc: OidcServer, ehr: EhrState, smart_config, http
) -> None:
    config = smart_config(
        type="smart-on-fhir-with-epic-bugfixes", introspectionEndpoint=f"{oidc.issuer}/token/introspection"
    )
    token = oidc.app_token(f"{ehr.fhir_base}/Patient/pat-b", "openid patient/DiagnosticReport.read")[
        "access_token"
    ]
    grant = await authorize(build(config, http), token)
    assert grant.patient_id == "pat-b" and grant.scopes == {"patient/DiagnosticReport.read"}
    with pytest.raises((InsufficientScope, Forbidden)):  # plain smart-on-fhir: neither is acceptable
        await authorize(build(smart_config(), http), token)


async def test_epic_sub_url_must_be_under_the_tenant_ehr(oidc: OidcServer, smart_config, http) -> None:
    config = smart_config(
        type="smart-on-fhir-with-epic-bugfixes", introspectionEndpoint=f"{oidc.issuer}/token/introspection"
    )
    token = oidc.app_token("https://evil.example/fhir/Patient/pat-b")["access_token"]
    with pytest.raises(Forbidden):
        await authorize(build(config, http), token)


def test_epic_introspection_endpoint_is_derived_from_the_token_endpoint(smart_config) -> None:
    from smart_imaging.auth.discovery import SmartEndpoints
    from smart_imaging.auth.quirks import BY_TYPE

    config = SmartAuthorization.model_validate(smart_config(type="smart-on-fhir-with-epic-bugfixes"))
    epic = BY_TYPE[config.type]
    endpoints = SmartEndpoints(token_endpoint="https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token")
    derived = epic.introspection_endpoint(endpoints, config.introspectionEndpoint)
    assert derived == "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/introspect"


def meditech(oidc: OidcServer, smart_config, allow: bool) -> dict[str, Any]:
    return smart_config(
        type="smart-on-fhir-with-meditech-bugfixes",
        allowInsecurePatientFromRequest=allow,
        client={"client_id": "imaging-secret", "client_secret": oidc.secrets["imaging-secret"]},
        scope=None,
    )


async def test_meditech_refuses_everything_without_the_insecure_flag(
    oidc: OidcServer, smart_config, http, caplog
) -> None:
    caplog.set_level("WARNING", logger="smart_imaging.auth")
    authorizer = build(meditech(oidc, smart_config, allow=False), http)
    assert "allowInsecurePatientFromRequest" in caplog.text
    for token in (None, oidc.app_token("pat-a")["access_token"]):
        with pytest.raises(Forbidden) as caught:
            await authorize(authorizer, token, "pat-a")
        assert "allowInsecurePatientFromRequest" in caught.value.message


async def test_meditech_pins_the_token_to_the_first_searched_patient(
    oidc: OidcServer, ehr: EhrState, smart_config, http
) -> None:
    authorizer = build(meditech(oidc, smart_config, allow=True), http)
    token = oidc.app_token("nopatient:pat-a", "openid patient/ImagingStudy.read")["access_token"]
    with pytest.raises(Forbidden):  # WADO (no patient in the request) before any search
        await authorize(authorizer, token)
    grant = await authorize(authorizer, token, "pat-a")
    assert grant.patient_id == "pat-a"
    assert (await authorizer.patient(grant))["id"] == "pat-a"
    assert ehr.patient_readers == ["app"]  # read with the app's own token
    assert (await authorize(authorizer, token)).patient_id == "pat-a"  # WADO: the pinned patient
    with pytest.raises(Forbidden):
        await authorize(authorizer, token, "pat-b")
    other = oidc.app_token("nopatient:pat-a", "openid patient/ImagingStudy.read")["access_token"]
    with pytest.raises(Forbidden):  # the EHR does not let this token read pat-b
        await authorize(authorizer, other, "pat-b")


async def test_no_error_leaks_a_token(oidc: OidcServer, smart_config, http, caplog) -> None:
    caplog.set_level("DEBUG")
    token = oidc.app_token("pat-a", "openid patient/Observation.rs")["access_token"]
    messages: list[SmartImagingError] = []
    for authorizer in (
        build(smart_config(), http),
        build(smart_config(timeout=0.5, fhirBaseUrl=f"http://127.0.0.1:{free_port()}/fhir"), http),
    ):
        try:
            await authorize(authorizer, token)
        except SmartImagingError as exc:
            messages.append(exc)
    assert len(messages) == 2
    for exc in messages:
        assert token not in exc.message and all(token not in v for v in exc.headers.values())
    assert token not in caplog.text
