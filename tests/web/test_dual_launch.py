"""The viewer's dual launch in real headless Chromium against ``smart-imaging demo``: the EHR launch
at the sandbox, then the imaging launch at the ``dual`` tenant's own authorization server (its EHR
leg silent with the EHR's id_token as hint, its consent page), the studies searched and a study
opened with the imaging token, the clinical data read with the EHR's, both legs in the trace."""

from __future__ import annotations

import re
from typing import Any

from .harness import CANVAS_STATS

DUAL_SERVER = "Demo EHR + dual-launch imaging (tenant dual)"
CT_STUDY = "CT CHEST WO CONTRAST"
TRACE = "JSON.parse(sessionStorage.getItem('smart-imaging-viewer.trace'))"


def dual_connect(page: Any, base: str, patient: str = "Marcus Okafor") -> None:
    page.goto(f"{base}/")
    page.get_by_role("button", name=f"Connect to {DUAL_SERVER}").click()
    page.wait_for_url("**/ehr/authorize?**")
    assert "scope=" in page.url and "openid" in page.url
    page.get_by_label(patient, exact=False).check()
    page.get_by_role("button", name="Approve").click()
    allow = page.get_by_role("button", name="Allow")  # the imaging server's consent page
    allow.wait_for()
    assert "/dual/oauth/" in page.url
    assert patient in page.locator("body").inner_text()
    allow.click()
    page.wait_for_url(f"{base}/")


def redacted_prefix(token: str) -> str:
    """What trace.js keeps of a token: its first 4 characters (redactSecret)."""
    return f"Bearer {token[:4]}…[redacted {len(token)} chars]"


def check_trace(page: Any, ehr_token: str, imaging_token: str, imaging_refresh: str) -> None:
    """Both legs are in the trace, each call carried its leg's token, and no token is stored."""
    entries = page.evaluate(TRACE)
    steps = [(e["step"], e["status"]) for e in entries]
    for step in ("discovery", "token", "discovery (imaging)", "token (imaging)"):
        assert (step, 200) in steps, steps
    assert ("authorize (imaging)", "redirect") in steps and ("authorize (imaging)", "callback") in steps

    def auth_of(step: str) -> str:
        entry = next(e for e in entries if e["step"] == step)
        return dict(entry["requestHeaders"])["authorization"]

    assert auth_of("Patient") == redacted_prefix(ehr_token)
    assert auth_of("ImagingStudy") == redacted_prefix(imaging_token)
    assert auth_of("WADO-RS") == redacted_prefix(imaging_token)
    redirect = next(e for e in entries if e["step"] == "authorize (imaging)")
    assert "login_hint=[redacted]" in redirect["url"] and "code_challenge_method=S256" in redirect["url"]
    stored = page.evaluate("sessionStorage.getItem('smart-imaging-viewer.trace')")
    assert imaging_refresh  # offline_access was asked for
    for secret in (ehr_token, imaging_token, imaging_refresh):
        assert secret not in stored


def test_dual_launch_search_and_open_a_study(page: Any, demo: Any, screenshot: Any) -> None:
    dual_connect(page, demo.base)
    assert page.locator("#patient-name").inner_text() == "Marcus Okafor"
    assert page.locator("#count-conditions .count-n").inner_text() == "3"
    studies = page.locator("button.study")
    studies.first.wait_for()
    assert any(CT_STUDY in t and "64 images" in t for t in studies.all_inner_texts())
    assert "dual launch" in page.locator("#connection").inner_text()
    assert "/dual/fhir" in page.locator("#screen-patient").inner_text()
    screenshot(page, "dual-launch-patient")
    session = page.evaluate("window.viewerApp.session")
    ehr_token, imaging_token = session["accessToken"], session["imaging"]["accessToken"]
    assert imaging_token and imaging_token != ehr_token
    assert session["imaging"]["patient"] == session["patient"] == "marcus-okafor"

    page.locator("button.study", has_text=CT_STUDY).click()
    page.wait_for_function("window.viewerMetrics && window.viewerMetrics.studyCompleteMs !== null")
    stats = page.evaluate(CANVAS_STATS, "image")
    assert stats["distinct"] > 8 and stats["litFraction"] > 0.02, stats
    assert page.evaluate("window.viewerMetrics.instances") == 64

    check_trace(page, ehr_token, imaging_token, session["imaging"]["refreshToken"])

    page.get_by_role("button", name="← Studies").click()
    page.get_by_role("button", name=re.compile("Protocol trace")).click()
    screenshot(page, "dual-launch-trace")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Disconnect").click()
    page.get_by_role("button", name=f"Connect to {DUAL_SERVER}").wait_for()
    steps = [(e["step"], e["status"]) for e in page.evaluate(TRACE)]
    assert ("revoke (imaging)", 200) in steps and ("revoke", 200) in steps, steps


def test_denied_at_the_imaging_server_leaves_no_session(page: Any, demo: Any) -> None:
    page.goto(f"{demo.base}/")
    page.get_by_role("button", name=f"Connect to {DUAL_SERVER}").click()
    page.wait_for_url("**/ehr/authorize?**")
    page.get_by_label("Lucia Ramirez", exact=False).check()
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("button", name="Deny").click()  # on the imaging server's consent page
    message = page.locator("#message")
    message.wait_for()
    assert "denied at the imaging server's authorization server" in message.inner_text()
    assert page.evaluate("sessionStorage.getItem('smart-imaging-viewer.session')") is None
    steps = [(e["step"], e["status"]) for e in page.evaluate(TRACE)]
    assert ("token", 200) in steps and ("revoke", 200) in steps, steps  # the EHR token revoked
    assert not any(step == "token (imaging)" for step, _ in steps), steps
