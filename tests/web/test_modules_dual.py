"""The viewer's dual-launch functions in Chromium (pure ES module functions, no server flow):
which associated_endpoints entry is the imaging server, the imaging leg's authorize URL with
login_hint, the imaging grant (patient must match the EHR's), the server settings, and the
trace redacting the id_token that travels as login_hint."""

from __future__ import annotations

from typing import Any

import pytest

IMPORTS = """async (args) => {
  const m = {};
  for (const name of ['dual', 'smart', 'settings', 'trace']) m[name] = await import(`/viewer/js/${name}.js`);
  const error = (fn) => { try { fn(); return null; } catch (err) { return [err.name, err.code, err.message]; } };
"""

EHR_CONFIG = {
    "authorization_endpoint": "https://ehr.example/authorize",
    "token_endpoint": "https://ehr.example/token",
    "associated_endpoints": [
        {"url": "https://img.example/dual/fhir/", "capabilities": ["smart-imaging-access-dual-launch"]},
        {
            "url": "https://img.example/demo/fhir",
            "capabilities": [
                "smart-imaging-access",
                "http://fhir.org/argonaut/smart-imaging/capabilities/app-launch",
            ],
        },
        {"url": 42, "capabilities": ["smart-imaging-access-dual-launch"]},
    ],
}


@pytest.fixture
def module_page(page: Any, demo: Any) -> Any:
    page.goto(f"{demo.base}/config")  # any page of the origin; modules are imported on demand
    return page


def run(page: Any, body: str, args: Any = None) -> Any:
    return page.evaluate(IMPORTS + body + "\n}", args)


def test_imaging_base_by_mode_and_override(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const base = (server) => m.smart.imagingBase(server, args);
  return {
    standalone: base({ dualLaunch: false }),
    dual: base({ dualLaunch: true }),
    override: base({ dualLaunch: true, imagingOverride: 'https://other.example/fhir' }),
    none: m.smart.imagingBase({ dualLaunch: true }, { associated_endpoints: [] }),
  };
""",
        EHR_CONFIG,
    )
    assert result["standalone"] == {
        "url": "https://img.example/demo/fhir",
        "from": "associated_endpoints",
        "dualLaunch": False,
    }
    assert result["dual"] == {
        "url": "https://img.example/dual/fhir",
        "from": "associated_endpoints",
        "dualLaunch": True,
    }
    assert result["override"]["url"] == "https://other.example/fhir"
    assert result["override"]["from"] == "override"
    assert result["none"] is None


def test_imaging_authorize_url_carries_the_id_token_as_login_hint(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const leg = { clientId: 'viewer', redirectUri: 'http://localhost:8000/', scope: 'launch/patient patient/ImagingStudy.rs',
    state: 'st-2', aud: 'https://img.example/dual/fhir', idToken: 'eyJ.id.token', challenge: 'c'.repeat(43) };
  const plain = new URL(m.dual.imagingAuthorizeUrl({ authorization_endpoint: 'https://img.example/dual/oauth/authorize' }, leg));
  const withQuery = m.dual.imagingAuthorizeUrl({ authorization_endpoint: 'https://img.example/authorize?tenant=dual' }, leg);
  return {
    origin: plain.origin + plain.pathname, params: Object.fromEntries(plain.searchParams),
    withQuery: Object.fromEntries(new URL(withQuery).searchParams),
    noIdToken: error(() => m.dual.imagingAuthorizeUrl({ authorization_endpoint: 'https://x/a' }, { ...leg, idToken: undefined })),
    redacted: m.trace.redactUrl(plain.toString()),
  };
""",
    )
    assert result["origin"] == "https://img.example/dual/oauth/authorize"
    assert result["params"] == {
        "response_type": "code",
        "client_id": "viewer",
        "redirect_uri": "http://localhost:8000/",
        "scope": "launch/patient patient/ImagingStudy.rs",
        "state": "st-2",
        "aud": "https://img.example/dual/fhir",
        "login_hint": "eyJ.id.token",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }
    assert result["withQuery"]["tenant"] == "dual" and result["withQuery"]["login_hint"] == "eyJ.id.token"
    assert result["noIdToken"][1] == "no_id_token" and "openid" in result["noIdToken"][2]
    assert "eyJ.id.token" not in result["redacted"] and "login_hint=[redacted]" in result["redacted"]
    assert "state=st-2" in result["redacted"]


def test_imaging_grant_and_config_checks(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const token = { access_token: 'img-token', refresh_token: 'img-refresh', expires_in: 600, scope: 'patient/ImagingStudy.rs', patient: 'ava-chen' };
  return {
    grant: m.dual.imagingGrant(token, 'ava-chen', 1000),
    noPatient: m.dual.imagingGrant({ access_token: 't' }, 'ava-chen', 0),
    mismatch: error(() => m.dual.imagingGrant(token, 'sam-patel', 0)),
    noToken: error(() => m.dual.imagingGrant({ patient: 'ava-chen' }, 'ava-chen', 0)),
    noEndpoints: error(() => m.dual.checkImagingConfig({ capabilities: [] }, 'https://img.example/fhir/.well-known/smart-configuration')),
    noS256: error(() => m.dual.checkImagingConfig({ authorization_endpoint: 'a', token_endpoint: 't', code_challenge_methods_supported: ['plain'] }, 'u')),
    ok: error(() => m.dual.checkImagingConfig({ authorization_endpoint: 'a', token_endpoint: 't' }, 'u')),
    noImaging: error(() => m.dual.checkDualServer({ scope: 'openid launch/patient' }, null)),
    noOpenid: error(() => m.dual.checkDualServer({ scope: 'launch/patient' }, { url: 'x' })),
    dualOk: error(() => m.dual.checkDualServer({ scope: 'launch/patient openid fhirUser' }, { url: 'x' })),
  };
""",
    )
    assert result["grant"] == {
        "accessToken": "img-token",
        "refreshToken": "img-refresh",
        "expiresAt": 1000 + 600_000,
        "scope": "patient/ImagingStudy.rs",
        "patient": "ava-chen",
    }
    assert result["noPatient"]["patient"] == "ava-chen" and result["noPatient"]["refreshToken"] is None
    assert result["mismatch"][1] == "patient_mismatch" and "sam-patel" in result["mismatch"][2]
    assert "access_token" in result["noToken"][2]
    assert "no authorization server of its own" in result["noEndpoints"][2]
    assert "S256" in result["noS256"][2]
    assert result["ok"] is None and result["dualOk"] is None
    assert (
        result["noImaging"][1] == "no_imaging"
        and "smart-imaging-access-dual-launch" in result["noImaging"][2]
    )
    assert result["noOpenid"][1] == "no_openid"


def test_server_settings_for_dual_launch(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const s = m.settings;
  const checked = s.normalize({ iss: 'https://ehr.example/fhir/', dualLaunch: 'on' });
  const own = s.normalize({ iss: 'https://ehr.example/fhir', clientId: 'app', dualLaunch: true,
    imagingClientId: ' img-app ', imagingScope: 'launch/patient   patient/ImagingStudy.rs' });
  return {
    checked: checked.dualLaunch, unchecked: s.normalize({ iss: 'x' }).dualLaunch,
    defaults: s.imagingClient(checked), own: s.imagingClient(own),
    problems: s.validateServer({ ...checked, label: 'x', scope: 'launch/patient patient/*.rs' }),
    fine: s.validateServer({ ...checked, label: 'x' }),
    servers: s.defaultServers().map((x) => [x.id, x.dualLaunch, x.iss === `${location.origin}/ehr/fhir`]),
  };
""",
    )
    assert result["checked"] is True and result["unchecked"] is False
    assert result["defaults"] == {
        "clientId": "smart-imaging-viewer",
        "scope": "launch/patient patient/ImagingStudy.rs offline_access",
    }
    assert result["own"] == {"clientId": "img-app", "scope": "launch/patient patient/ImagingStudy.rs"}
    assert [p["field"] for p in result["problems"]] == ["scope"] and "openid" in result["problems"][0][
        "message"
    ]
    assert result["fine"] == []
    assert result["servers"] == [["demo", False, True], ["demo-dual", True, True]]
