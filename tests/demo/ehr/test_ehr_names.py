"""One sandbox under several names (``localhost`` and ``127.0.0.1``), over real HTTP: with
``derive_from_request`` every URL it emits follows the name the client used, and every check
(``aud``, client assertion ``aud``, id_token ``iss`` of a hint) accepts each of its names."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from .conftest import MovableClock, Sandbox, backend_keys, free_socket, make_config, serve

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sock = free_socket()
    port = sock.getsockname()[1]
    clock, keys = MovableClock(), backend_keys()
    config = make_config(port, tmp_path_factory.mktemp("ehr-names"), clock, keys).model_copy(
        update={
            "base_url": f"http://localhost:{port}/ehr",
            "imaging_fhir_base_url": f"http://localhost:{port}/demo/fhir",
            "derive_from_request": True,
            "alias_origins": (f"http://127.0.0.1:{port}",),
        }
    )
    with serve(sock, config):
        sandbox = Sandbox(config.base_url, config, clock, keys)
        yield sandbox
        sandbox.http.close()


def _at(sandbox: Sandbox, host: str) -> Sandbox:
    port = httpx.URL(sandbox.base).port
    return Sandbox(f"http://{host}:{port}/ehr", sandbox.config, sandbox.clock, sandbox.keys, sandbox.http)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_discovery_and_launch_follow_the_name_used(named: Sandbox, host: str) -> None:
    sandbox = _at(named, host)
    port = httpx.URL(sandbox.base).port
    config = sandbox.http.get(f"{sandbox.fhir}/.well-known/smart-configuration").json()
    assert config["issuer"] == sandbox.fhir
    assert config["authorization_endpoint"] == f"{sandbox.base}/authorize"
    assert config["token_endpoint"] == f"{sandbox.base}/token"
    assert config["associated_endpoints"][0]["url"] == f"http://{host}:{port}/demo/fhir"
    oidc = sandbox.http.get(f"{sandbox.fhir}/.well-known/openid-configuration").json()
    assert oidc["issuer"] == sandbox.fhir and oidc["jwks_uri"].startswith(sandbox.base)
    token = sandbox.launch(scope="launch/patient patient/*.rs openid fhirUser")  # aud = this name
    keys = KeySet.import_key_set(sandbox.http.get(config["jwks_uri"]).json())
    claims = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["iss"] == sandbox.fhir and claims["fhirUser"] == f"{sandbox.fhir}/Patient/ava-chen"
    bundle = sandbox.http.get(
        f"{sandbox.fhir}/Condition",
        params={"patient": "ava-chen"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
    ).json()
    assert bundle["link"][0]["url"].startswith(f"{sandbox.fhir}/Condition")


def _authorize(sandbox: Sandbox, aud: str) -> httpx.Response:
    return sandbox.authorize(
        response_type="code",
        client_id="my-app",
        redirect_uri="http://localhost:9999/cb",
        scope="launch/patient patient/*.rs",
        state="s",
        aud=aud,
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
    )


def test_aud_may_name_the_sandbox_by_any_of_its_names(named: Sandbox) -> None:
    port = httpx.URL(named.base).port
    via_ip = _at(named, "127.0.0.1")
    for aud in (f"http://localhost:{port}/ehr/fhir", f"http://127.0.0.1:{port}/demo/fhir/"):
        assert _authorize(via_ip, aud).status_code == 200, aud  # the consent page
    for aud in (f"http://elsewhere.example:{port}/ehr/fhir", f"http://127.0.0.1:{port}/other/fhir"):
        refused = _authorize(via_ip, aud)
        assert refused.status_code == 302, aud
        assert httpx.URL(refused.headers["location"]).params["error"] == "invalid_request"


def test_client_assertion_aud_under_another_name(named: Sandbox) -> None:
    port = httpx.URL(named.base).port
    via_ip = _at(named, "127.0.0.1")
    for aud, status in ((f"http://localhost:{port}/ehr/token", 200), ("http://localhost:1/ehr/token", 401)):
        response = via_ip.http.post(
            f"{via_ip.base}/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": via_ip.assertion("imaging-server", aud=aud),
            },
        )
        assert response.status_code == status, response.text


def test_malformed_host_header_keeps_the_configured_origin(named: Sandbox) -> None:
    url = f"{_at(named, '127.0.0.1').fhir}/.well-known/smart-configuration"
    config = named.http.get(url, headers={"Host": "bad host/<x>"}).json()
    assert config["authorization_endpoint"] == f"{named.base}/authorize"


def test_fixed_origin_ignores_the_host_header(sandbox: Sandbox) -> None:
    """Without derive_from_request (``--base-url``), the configured URL wins whatever the name."""
    port = httpx.URL(sandbox.base).port
    config = sandbox.http.get(
        f"{sandbox.fhir}/.well-known/smart-configuration", headers={"Host": f"localhost:{port}"}
    ).json()
    assert config["authorization_endpoint"] == f"{sandbox.base}/authorize"
    refused = sandbox.authorize(
        response_type="code",
        client_id="my-app",
        redirect_uri="http://localhost:9999/cb",
        scope="launch/patient",
        state="s",
        aud=f"http://localhost:{port}/ehr/fhir",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        code_challenge_method="S256",
    )
    assert httpx.URL(refused.headers["location"]).params["error"] == "invalid_request"
