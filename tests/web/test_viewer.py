"""The viewer in real headless Chromium against ``smart-imaging demo``: launch at the EHR sandbox,
clinical summary, studies, streamed WADO-RS display, series, scrolling, windowing, the trace."""

from __future__ import annotations

import re
from typing import Any

from .harness import CANVAS_STATS, connect

CT_STUDY = "CT CHEST WO CONTRAST"
XR_STUDY = "XR CHEST PA AND LATERAL"


def open_study(page: Any, description: str) -> None:
    page.locator("button.study", has_text=description).click()
    page.wait_for_function("window.viewerMetrics && window.viewerMetrics.firstImageMs !== null")


def assert_image_on_canvas(page: Any) -> dict[str, Any]:
    stats: dict[str, Any] = page.evaluate(CANVAS_STATS, "image")
    assert stats["distinct"] > 8 and stats["litFraction"] > 0.02, stats
    return stats


def viewer_state(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            "window.viewerApp && document.getElementById('instance-slider') && ({"
            "value: +document.getElementById('instance-slider').value,"
            "max: +document.getElementById('instance-slider').max,"
            "label: document.getElementById('instance-label').textContent,"
            "overlay: document.getElementById('overlay-instance').textContent,"
            "window: document.getElementById('overlay-window').textContent})"
        )
    )


def test_connect_shows_patient_summary_and_studies(page: Any, demo: Any, screenshot: Any) -> None:
    page.goto(f"{demo.base}/")
    screenshot(page, "connect")
    page.get_by_role("button", name="Connect to Demo EHR (this server)").click()
    page.wait_for_url("**/ehr/authorize?**")
    assert "code_challenge_method=S256" in page.url and "state=" in page.url
    screenshot(page, "ehr-consent")
    page.get_by_label("Marcus Okafor", exact=False).check()
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{demo.base}/")
    assert page.locator("#patient-name").inner_text() == "Marcus Okafor"
    assert page.locator("#birth-date").inner_text() == "1965-11-02"
    assert page.locator("#count-conditions .count-n").inner_text() == "3"
    assert page.locator("#count-allergies .count-n").inner_text() == "1"
    assert page.locator("#count-medications .count-n").inner_text() == "2"
    studies = page.locator("button.study")
    studies.first.wait_for()
    texts = studies.all_inner_texts()
    assert any(CT_STUDY in t and "1 series" in t and "64 images" in t for t in texts), texts
    assert any(XR_STUDY in t and "2 series" in t for t in texts), texts
    assert "code=" not in page.url and "state=" not in page.url
    screenshot(page, "patient")


def test_ct_study_streams_scrolls_windows_and_zooms(page: Any, demo: Any, screenshot: Any) -> None:
    connect(page, demo.base)
    open_study(page, CT_STUDY)
    assert_image_on_canvas(page)
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null")
    metrics = page.evaluate("window.viewerMetrics")
    assert metrics["instances"] == 64
    assert metrics["firstImageMs"] <= metrics["studyCompleteMs"] + 50
    state = viewer_state(page)
    assert state["max"] == 64 and state["value"] == 1 and state["label"].startswith("1 / 64")

    page.locator("#stage").focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    page.wait_for_function("document.getElementById('instance-slider').value === '4'")
    assert "Image 4 / 64" in viewer_state(page)["overlay"]
    page.keyboard.press("ArrowUp")
    assert viewer_state(page)["value"] == 3
    box = page.locator("#stage").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 120)
    page.wait_for_function("document.getElementById('instance-slider').value === '4'")
    page.locator("#instance-slider").fill("32")
    page.wait_for_function(
        "document.getElementById('overlay-instance').textContent.includes('Image 32 / 64')"
    )
    assert_image_on_canvas(page)
    page.keyboard.press("End")
    page.wait_for_function("document.getElementById('instance-slider').value === '64'")

    before = viewer_state(page)["window"]
    assert re.search(r"W \d+ L -?\d+", before), before  # the DICOM default window first
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 60, steps=6)
    page.mouse.up()
    page.wait_for_function(f"document.getElementById('overlay-window').textContent !== {before!r}")
    page.locator("#stage").focus()
    page.keyboard.press("+")
    page.wait_for_function("document.getElementById('overlay-window').textContent.includes('Zoom 125%')")
    page.keyboard.press("Home")
    page.locator("#instance-slider").fill("30")
    page.wait_for_function(
        "document.getElementById('overlay-instance').textContent.includes('Image 30 / 64')"
    )
    details = page.locator("#details").inner_text()
    assert "Explicit VR Little Endian" in details and "256 \u00d7 256" in details
    screenshot(page, "viewer-ct")
    page.keyboard.press("0")
    page.wait_for_function(
        f"document.getElementById('overlay-window').textContent.includes({before.splitlines()[0]!r})"
    )
    page.keyboard.press("Escape")
    page.locator("button.study").first.wait_for()
    assert page.evaluate("window.viewerApp.screen()") == "patient"


def test_first_image_is_drawn_while_the_study_is_still_arriving(page: Any, demo: Any) -> None:
    connect(page, demo.base)
    page.locator("button.study").first.wait_for()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {  # 20 Mbit/s: the 8.5 MB study takes ~3.5 s
            "offline": False,
            "latency": 10,
            "downloadThroughput": 20e6 / 8,
            "uploadThroughput": 20e6 / 8,
        },
    )
    open_study(page, CT_STUDY)
    assert_image_on_canvas(page)
    early = page.evaluate("window.viewerMetrics")
    assert early["studyCompleteMs"] is None
    assert early["instancesAtFirstImage"] < 16 and early["bytesAtFirstImage"] < 8_000_000 / 4, early
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null", timeout=60_000)
    assert page.evaluate("window.viewerMetrics.instances") == 64


def test_jpeg_study_series_change_and_number_keys(page: Any, demo: Any, screenshot: Any) -> None:
    connect(page, demo.base)
    page.locator("button.study").first.wait_for()
    index = next(i for i, t in enumerate(page.locator("button.study").all_inner_texts()) if XR_STUDY in t)
    page.keyboard.press(str(index + 1))
    page.wait_for_function("window.viewerMetrics && window.viewerMetrics.firstImageMs !== null")
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null")
    first = assert_image_on_canvas(page)
    assert "JPEG Baseline" in page.locator("#details").inner_text()
    series = page.locator("button.series")
    assert series.count() == 2
    selected = series.nth(0).get_attribute("aria-pressed") == "true"
    other = 1 if selected else 0
    page.locator("#stage").focus()
    page.keyboard.press(str(other + 1))
    page.wait_for_function(
        f"document.querySelectorAll('button.series')[{other}].getAttribute('aria-pressed') === 'true'"
    )
    second = assert_image_on_canvas(page)
    assert first != second or page.locator("#overlay-instance").inner_text()
    screenshot(page, "viewer-xr")
    series.nth(1 - other).click()
    page.wait_for_function(
        f"document.querySelectorAll('button.series')[{1 - other}].getAttribute('aria-pressed') === 'true'"
    )
    page.get_by_role("button", name="← Studies").click()
    assert page.evaluate("window.viewerApp.screen()") == "patient"


def test_trace_lists_every_exchange_with_tokens_redacted(page: Any, demo: Any, screenshot: Any) -> None:
    connect(page, demo.base)
    open_study(page, CT_STUDY)
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null")
    token = page.evaluate("window.viewerApp.session.accessToken")
    page.get_by_role("button", name=re.compile("Protocol trace")).click()
    drawer = page.locator("#trace")
    drawer.wait_for()
    steps = drawer.locator("li.trace-entry").evaluate_all(
        "els => els.map(e => [e.dataset.step, e.dataset.status])"
    )
    names = [s for s, _ in steps]
    for step in ("discovery", "authorize", "token", "Patient", "Condition", "ImagingStudy", "WADO-RS"):
        assert step in names, names
    assert dict(steps)["WADO-RS"] == "200" and dict(steps)["token"] == "200"
    wado = drawer.locator("li.trace-entry[data-step='WADO-RS']").last
    wado.locator("summary").click()
    text = wado.inner_text()
    assert "authorization" in text.lower() and "[redacted" in text and "multipart/related" in text
    assert token not in drawer.inner_text()
    token_entry = drawer.locator("li.trace-entry[data-step='token']").first
    token_entry.locator("summary").click()
    assert "code_verifier" in token_entry.inner_text() and "[redacted" in token_entry.inner_text()
    screenshot(page, "trace")
    assert token not in page.evaluate("sessionStorage.getItem('smart-imaging-viewer.trace')")
    page.keyboard.press("Escape")
    assert drawer.is_hidden()


def test_token_refreshed_before_expiry_and_disconnect(page: Any, demo: Any) -> None:
    connect(page, demo.base)
    page.locator("button.study").first.wait_for()
    old = page.evaluate("window.viewerApp.session.accessToken")
    page.evaluate("""() => { const s = JSON.parse(sessionStorage.getItem('smart-imaging-viewer.session'));
        s.expiresAt = Date.now() + 30000; sessionStorage.setItem('smart-imaging-viewer.session', JSON.stringify(s)); }""")
    page.reload()
    page.locator("button.study").first.wait_for()
    steps = page.evaluate(
        "JSON.parse(sessionStorage.getItem('smart-imaging-viewer.trace')).map(e => [e.step, e.status])"
    )
    assert ["token (refresh)", 200] in steps, steps
    new = page.evaluate("window.viewerApp.session.accessToken")
    assert new != old
    page.get_by_role("button", name="Disconnect").click()
    page.get_by_role("button", name="Connect to Demo EHR (this server)").wait_for()
    assert page.evaluate("sessionStorage.getItem('smart-imaging-viewer.session')") is None
    steps = page.evaluate(
        "JSON.parse(sessionStorage.getItem('smart-imaging-viewer.trace')).map(e => [e.step, e.status])"
    )
    assert ["revoke", 200] in steps, steps


def test_iss_parameter_starts_a_launch(page: Any, demo: Any) -> None:
    page.goto(f"{demo.base}/?iss={demo.base}/ehr/fhir")
    page.wait_for_url("**/ehr/authorize?**")
    assert "aud=" in page.url
    page.get_by_label("Lucia Ramirez", exact=False).check()
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{demo.base}/")
    assert page.locator("#patient-name").inner_text() == "Lucia Ramirez"
