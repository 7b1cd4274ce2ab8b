"""Failure paths the viewer must explain: denied authorization, a forged state, 503 with a
Retry-After countdown, and an imaging server that refuses the EHR's token."""

from __future__ import annotations

import json
from typing import Any

from joserfc.jwk import ECKey

from .harness import connect


def test_denied_authorization_is_explained(page: Any, demo: Any, screenshot: Any) -> None:
    connect(page, demo.base, approve=False)
    message = page.locator("#message")
    message.wait_for()
    assert "denied" in message.inner_text().lower()
    assert page.evaluate("sessionStorage.getItem('smart-imaging-viewer.session')") is None
    page.get_by_role("button", name="Connect to Demo EHR (this server)").wait_for()
    screenshot(page, "error-denied")


def test_callback_with_wrong_state_is_refused(page: Any, demo: Any) -> None:
    page.goto(f"{demo.base}/")
    page.evaluate("""sessionStorage.setItem('smart-imaging-viewer.pending', JSON.stringify(
        {state: 'expected', verifier: 'v', server: {}, config: {token_endpoint: '/nowhere'}}))""")
    page.goto(f"{demo.base}/?code=abc&state=forged")
    message = page.locator("#message")
    message.wait_for()
    assert "wrong state" in message.inner_text()
    steps = page.evaluate("JSON.parse(sessionStorage.getItem('smart-imaging-viewer.trace')).map(e => e.step)")
    assert "token" not in steps


def add_server(page: Any, base: str, label: str, imaging: str) -> None:
    page.goto(f"{base}/")
    page.get_by_role("button", name="Add a server").click()
    page.get_by_label("Label").fill(label)
    page.get_by_label("FHIR base URL (iss)").fill(f"{base}/ehr/fhir")
    page.get_by_label("Imaging FHIR base (optional override)").fill(imaging)
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name=f"Connect to {label}").wait_for()


def test_503_shows_a_countdown_then_retries(
    page: Any, demo: Any, delayed_imaging: Any, screenshot: Any
) -> None:
    imaging = delayed_imaging(4)
    add_server(page, demo.base, "Slow archive", imaging)
    connect(page, demo.base, server="Slow archive")
    countdown = page.locator("#retry-countdown")
    countdown.wait_for()
    seconds = int(page.locator("#retry-seconds").inner_text())
    assert 1 <= seconds <= 4
    screenshot(page, "retry-countdown")
    page.locator("button.study").first.wait_for(timeout=15_000)
    assert "CT CHEST WO CONTRAST" in page.locator("#screen-patient").inner_text()
    steps = page.evaluate(
        "JSON.parse(sessionStorage.getItem('smart-imaging-viewer.trace'))"
        ".filter(e => e.step === 'ImagingStudy').map(e => e.status)"
    )
    assert steps[0] == 503 and steps[-1] == 200, steps
    retry_after = page.evaluate(
        "JSON.parse(sessionStorage.getItem('smart-imaging-viewer.trace'))"
        ".find(e => e.status === 503).responseHeaders"
    )
    assert any(name == "retry-after" for name, _ in retry_after), retry_after


JWT_ONLY_TENANT = {
    "authorization": {
        "type": "smart-on-fhir-jwt",
        "fhirBaseUrl": "{base}/ehr/fhir",
        "jwksUri": "{base}/ehr/.well-known/jwks.json",
        "client": {"client_id": "not-registered", "jwkPrivate": "{key}"},
    },
    "images": {"type": "dicom-web", "endpoint": "{base}/no-archive/dicom-web"},
}


def test_imaging_server_refusing_the_token(page: Any, demo: Any, screenshot: Any) -> None:
    """A dynamic tenant that only accepts JWT access tokens; the sandbox's are opaque -> 401."""
    key = ECKey.generate_key("P-384", parameters={"alg": "ES384"}, auto_kid=True).as_dict(private=True)
    config = json.loads(
        json.dumps(JWT_ONLY_TENANT).replace("{base}", demo.base).replace('"{key}"', json.dumps(key))
    )
    page.goto(f"{demo.base}/config")
    page.get_by_label("Config JSON").fill(json.dumps(config, indent=2))
    page.get_by_role("button", name="Validate").click()
    fhir_base = page.locator("#fhir-base").inner_text()
    assert fhir_base.startswith(f"{demo.base}/dyn/") and fhir_base.endswith("/fhir")
    page.get_by_label("Label").fill("JWT-only tenant")
    page.get_by_role("button", name="Add to the viewer's servers").click()
    page.wait_for_url(f"{demo.base}/")
    connect(page, demo.base, server="JWT-only tenant")
    error = page.locator("#imaging-error")
    error.wait_for()
    text = error.inner_text()
    assert "refused the access token (401" in text and "not a JWT" in text
    assert page.locator("#patient-name").inner_text() == "Marcus Okafor"  # the EHR still works
    screenshot(page, "error-token-refused")


def test_config_editor_lists_problems(page: Any, demo: Any, screenshot: Any) -> None:
    page.goto(f"{demo.base}/config")
    page.get_by_label("Config JSON").fill(
        json.dumps({"authorization": {"type": "smart-on-fhir"}, "images": {"type": "folder", "path": "/tmp"}})
    )
    page.get_by_role("button", name="Validate").click()
    problems = page.locator("#problems li")
    problems.first.wait_for()
    text = page.locator("#problems").inner_text()
    assert "authorization.fhirBaseUrl" in text
    page.get_by_role("button", name="Reset to example").click()
    page.get_by_role("button", name="Validate").click()
    page.locator("#fhir-base").wait_for()
    screenshot(page, "config-editor")
