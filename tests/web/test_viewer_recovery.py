"""The viewer in Chromium against ``smart-imaging demo``, on the IG's retrieval rules: WADO-RS
carries the token the study was found with, even after the session's token was refreshed; a 403
from WADO-RS ("refreshing a retrieval endpoint") makes it search again for that study and retry
once with the fresh Endpoint."""

from __future__ import annotations

import json
from typing import Any

from .harness import connect
from .test_viewer import CT_STUDY, assert_image_on_canvas, open_study

TRACE = "JSON.parse(sessionStorage.getItem('smart-imaging-viewer.trace')).map(e => [e.step, e.status])"


def test_W1_wado_rs_keeps_the_search_token_after_the_session_token_is_refreshed(page: Any, demo: Any) -> None:
    connect(page, demo.base)
    page.locator("button.study").first.wait_for()
    # the session's token then expires in 61 s: the refresh timer renews it 5 s from the reload
    page.evaluate("""() => { const s = JSON.parse(sessionStorage.getItem('smart-imaging-viewer.session'));
        s.expiresAt = Date.now() + 61000; sessionStorage.setItem('smart-imaging-viewer.session', JSON.stringify(s)); }""")
    page.reload()
    page.locator("button.study").first.wait_for()
    searched_with = page.evaluate("window.viewerApp.session.accessToken")
    page.wait_for_function(
        f"window.viewerApp.session.accessToken !== {json.dumps(searched_with)}", timeout=15000
    )
    searches = [s for s in page.evaluate(TRACE) if s[0] == "ImagingStudy"]
    open_study(page, CT_STUDY)
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null")
    assert_image_on_canvas(page)
    steps = page.evaluate(TRACE)
    assert ["WADO-RS", 200] in steps and ["WADO-RS", 403] not in steps
    assert [s for s in steps if s[0] == "ImagingStudy"] == searches  # no recovery search was needed


def test_W14_a_403_from_wado_rs_searches_again_and_retries_once(page: Any, demo: Any) -> None:
    refused: list[str] = []

    def first_wado_refused(route: Any) -> None:
        if not refused:
            refused.append(route.request.url)
            body = {"error": "forbidden", "message": "study binding expired; search ImagingStudy again"}
            route.fulfill(status=403, content_type="application/json", body=json.dumps(body))
        else:
            route.continue_()

    connect(page, demo.base)
    page.locator("button.study").first.wait_for()
    page.route("**/wado/**", first_wado_refused)
    before = [s for s in page.evaluate(TRACE) if s[0] == "ImagingStudy"]
    open_study(page, CT_STUDY)
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null")
    assert_image_on_canvas(page)
    steps = page.evaluate(TRACE)
    assert ["WADO-RS", 403] in steps and ["WADO-RS", 200] in steps
    assert len([s for s in steps if s[0] == "ImagingStudy"]) == len(before) + 1  # one search for the study
    assert len(refused) == 1
