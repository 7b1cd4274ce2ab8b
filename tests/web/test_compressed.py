"""The viewer draws compressed, multi-frame and color studies (issue 10.3) in real Chromium against
``smart-imaging demo``: it names the syntaxes it can draw (uncompressed, JPEG Baseline) and the
server transcodes the rest (JPEG 2000, JPEG-LS, RLE); the protocol trace shows both sides of the
negotiation. "Open in OHIF" hands the study over to a configured OHIF (issue 10.4)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from .harness import CANVAS_STATS, connect
from .test_viewer import open_study

ELE = "1.2.840.10008.1.2.1"
COLOR = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let colored = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - d[i + 1]) > 24 || Math.abs(d[i + 1] - d[i + 2]) > 24) colored++;
  }
  return colored;
}"""  # pixels whose channels differ: a grey image has none


def drawn(page: Any) -> None:
    stats = page.evaluate(CANVAS_STATS, "image")
    assert stats["distinct"] > 8 and stats["litFraction"] > 0.02, stats
    assert page.locator("#stage-message").is_hidden(), page.locator("#stage-message").inner_text()


def trace(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("JSON.parse(sessionStorage.getItem('smart-imaging-viewer.trace') || '[]')"))


def wado_entries(page: Any) -> list[dict[str, Any]]:
    return [e for e in trace(page) if e["step"] == "WADO-RS" and e.get("ms") is not None]


def select_series(page: Any, number: int) -> None:
    page.locator("#stage").focus()
    page.keyboard.press(str(number))
    page.wait_for_function(
        f"document.querySelectorAll('button.series')[{number - 1}].getAttribute('aria-pressed') === 'true'"
    )


def test_jpeg2000_and_jpegls_studies_are_drawn_through_transcoding(page: Any, demo: Any) -> None:
    connect(page, demo.base, patient="Ava Chen")
    open_study(page, "NM WHOLE BODY (JPEG 2000)")
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null")
    drawn(page)
    assert "Explicit VR Little Endian" in page.locator("#details").inner_text()
    (entry,) = wado_entries(page)
    accept = dict(entry["requestHeaders"])["accept"]
    assert f"transfer-syntax={ELE}" in accept and "transfer-syntax=1.2.840.10008.1.2.4.50" in accept
    assert "*" not in accept
    assert "received as Explicit VR Little Endian" in entry["detail"]
    page.keyboard.press("Escape")

    open_study(page, "MR SMALL CODECS")
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null")
    names = page.locator("button.series .series-name").all_inner_texts()
    for number in range(1, len(names) + 1):
        select_series(page, number)
        page.wait_for_function("document.getElementById('stage-message').hidden")
        drawn(page)
    assert any("JPEG-LS" in n for n in names) and any("JPEG 2000" in n for n in names), names
    assert any("RLE" in n for n in names)
    assert (
        "received as Explicit VR Little Endian (1.2.840.10008.1.2.1) \u00d74"
        in wado_entries(page)[-1]["detail"]
    )


def test_multiframe_color_jpeg_is_kept_and_scrolled_frame_by_frame(page: Any, demo: Any) -> None:
    connect(page, demo.base, patient="Marcus Okafor")
    open_study(page, "US ECHO COLOR MULTI-FRAME")
    page.wait_for_function("window.viewerMetrics.studyCompleteMs !== null")
    names = page.locator("button.series .series-name").all_inner_texts()
    cine = next(n for n, name in enumerate(names, start=1) if "30 frames" in name)
    select_series(page, cine)
    page.wait_for_function("document.getElementById('instance-slider').max === '30'")
    drawn(page)
    assert page.evaluate(COLOR, "image") > 200  # a color image, not a grey one
    assert "JPEG Baseline" in page.locator("#details").inner_text()  # drawn by the browser as stored
    page.locator("#stage").focus()
    page.keyboard.press("End")
    page.wait_for_function(
        "document.getElementById('overlay-instance').textContent.includes('Frame 30 of 30')"
    )
    drawn(page)
    detail = wado_entries(page)[-1]["detail"]
    assert "JPEG Baseline (Process 1) (1.2.840.10008.1.2.4.50) \u00d71" in detail, detail
    assert f"({ELE}) \u00d72" in detail, detail  # the color JPEG 2000 and the uncompressed one
    for number in range(1, len(names) + 1):
        select_series(page, number)
        page.wait_for_function("document.getElementById('stage-message').hidden")
        assert page.evaluate(COLOR, "image") > 200, names[number - 1]


def test_open_in_ohif_hands_over_study_endpoint_and_token(page: Any, demo: Any) -> None:
    page.goto(f"{demo.base}/")
    page.locator("#ohif-url").fill("https://ohif.example.test/app")
    page.locator("#ohif-save").click()
    assert page.locator("#ohif-url-hint").inner_text() == "Saved."
    connect(page, demo.base, patient="Ava Chen")
    open_study(page, "NM WHOLE BODY (JPEG 2000)")
    button = page.locator("#open-ohif")
    button.wait_for(state="visible")
    assert "https://ohif.example.test" in (button.get_attribute("title") or "")
    page.context.route("https://ohif.example.test/**", lambda route: route.fulfill(body="OHIF stand-in"))
    with page.context.expect_page() as opened:
        button.click()
    popup = opened.value
    url = urlsplit(popup.url)
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "ohif.example.test", "/app/viewer")
    study = page.evaluate("window.viewerMetrics.studyUid")
    assert query["StudyInstanceUIDs"] == [study]
    assert "/demo/wado/" in query["endpoint"][0] and query["endpoint"][0].startswith(demo.base)
    assert len(query["token"][0]) > 16
    assert popup.evaluate("window.opener") is None  # noopener: OHIF cannot reach back into the viewer
    (handover,) = [e for e in trace(page) if e["step"] == "Open in OHIF"]
    assert query["token"][0] not in str(handover) and "[redacted]" in handover["url"]


def test_pure_helpers_of_the_hand_over_and_the_trace(page: Any, demo: Any) -> None:
    """ohif.js builds OHIF's viewer URL only for http(s) OHIF URLs; wado.js names the syntaxes it
    draws and describes what came back."""
    page.goto(f"{demo.base}/config")
    found = page.evaluate(
        """async () => {
      const ohif = await import('/viewer/js/ohif.js');
      const wado = await import('/viewer/js/wado.js');
      const study = { uid: '1.2.3', wado: { address: 'https://img.test/t/wado/abc/' }, token: 't0k en' };
      const refused = [];
      for (const bad of ['javascript:alert(1)', 'data:text/html,x', 'not a url', '']) {
        try { ohif.ohifLink(bad, study); } catch (err) { refused.push(bad); }
      }
      return {
        link: ohif.ohifLink('https://ohif.test/base/', study),
        plain: ohif.ohifLink('http://ohif.test', { ...study, token: null }),
        refused,
        saveBad: ohif.saveOhifUrl('ftp://x'),
        accept: wado.ACCEPT,
        described: wado.describe(new Map([['1.2.840.10008.1.2.1', 3], ['1.2.840.10008.1.2.4.50', 1]])),
      };
    }"""
    )
    assert found["link"] == (
        "https://ohif.test/base/viewer?StudyInstanceUIDs=1.2.3"
        "&endpoint=https%3A%2F%2Fimg.test%2Ft%2Fwado%2Fabc&token=t0k+en"
    )
    assert (
        found["plain"]
        == "http://ohif.test/viewer?StudyInstanceUIDs=1.2.3&endpoint=https%3A%2F%2Fimg.test%2Ft%2Fwado%2Fabc"
    )
    assert found["refused"] == ["javascript:alert(1)", "data:text/html,x", "not a url", ""]
    assert found["saveBad"] == "must be an http(s) URL"
    assert (
        found["accept"].count('type="application/dicom"') == 3 and "transfer-syntax=*" not in found["accept"]
    )
    assert found["described"] == (
        "; received as Explicit VR Little Endian (1.2.840.10008.1.2.1) \u00d73, "
        "JPEG Baseline (Process 1) (1.2.840.10008.1.2.4.50) \u00d71"
    )
