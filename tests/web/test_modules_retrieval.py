"""The viewer's discovery check and retrieval recovery in Chromium (pure ES module functions with
injected fetchers): IG "Discovery" (in-band discovery SHALL check the app-launch capability) and
"Retrieving images" (the search's token for WADO-RS; on 403 search again and retry once; a study
allowed only in part is retrieved series by series)."""

from __future__ import annotations

from typing import Any

import pytest

IMPORTS = """async (args) => {
  const m = {};
  for (const name of ['smart', 'retrieval', 'http']) m[name] = await import(`/viewer/js/${name}.js`);
  const denied = (code = 'forbidden') => new m.http.HttpError('WADO-RS', 403, 'no', null, null, code);
"""
APP_LAUNCH = "http://fhir.org/argonaut/smart-imaging/capabilities/app-launch"


@pytest.fixture
def module_page(page: Any, demo: Any) -> Any:
    page.goto(f"{demo.base}/config")
    return page


def run(page: Any, body: str, args: Any = None) -> Any:
    return page.evaluate(IMPORTS + body + "\n}", args)


def test_D9_in_band_discovery_needs_smart_imaging_access_and_the_app_launch_capability(
    module_page: Any,
) -> None:
    config = {
        "associated_endpoints": [
            {"url": "https://old.example/fhir", "capabilities": ["smart-imaging-access"]},
            {"url": "https://img.example/fhir", "capabilities": ["smart-imaging-access", APP_LAUNCH]},
        ]
    }
    result = run(
        module_page,
        """
  const only = { associated_endpoints: [args.associated_endpoints[0]] };
  return {
    found: m.smart.imagingBase({}, args),
    without: m.smart.imagingBase({}, only),
    override: m.smart.imagingBase({ imagingOverride: 'https://oob.example/fhir' }, only),
  };
""",
        config,
    )
    assert result["found"] == {
        "url": "https://img.example/fhir",
        "from": "associated_endpoints",
        "dualLaunch": False,
    }
    assert result["without"] is None  # smart-imaging-access alone does not establish the mode
    assert result["override"]["url"] == "https://oob.example/fhir"  # out-of-band MAY establish it


def test_W1_W14_the_search_token_is_used_and_a_403_refreshes_the_endpoint_once(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const calls = [];
  const study = { uid: '1.2', token: 'search-token', wado: { address: 'https://img/wado/old' }, series: [] };
  const fresh = { ...study, token: 'newer-token', wado: { address: 'https://img/wado/new' } };
  const fetchers = { study: async (address, uid, token) => {
    calls.push([address, token]);
    if (address.endsWith('/old')) throw denied();
    return { instances: 3, bytes: 30 };
  } };
  let refreshed = 0;
  const done = await m.retrieval.retrieveWithRecovery(study, { fetchers, refresh: async () => { refreshed++; return fresh; } });
  return { calls, refreshed, token: done.study.token, instances: done.instances };
""",
    )
    assert result["calls"] == [
        ["https://img/wado/old", "search-token"],
        ["https://img/wado/new", "newer-token"],
    ]
    assert result["refreshed"] == 1 and result["token"] == "newer-token" and result["instances"] == 3


def test_W14_refused_again_or_not_returned_the_viewer_stops(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const study = { uid: '1.2', token: 't', wado: { address: 'a' }, series: [] };
  const fetchers = { study: async () => { throw denied(); } };
  let refreshed = 0;
  const outcome = async (refresh) => {
    try { await m.retrieval.retrieveWithRecovery(study, { fetchers, refresh }); return 'retrieved'; }
    catch (err) { return [err.name, err.status ?? null]; }
  };
  const again = await outcome(async () => { refreshed++; return study; });
  const gone = await outcome(async () => null);
  return { again, gone, refreshed };
""",
    )
    assert result["again"] == ["HttpError", 403] and result["refreshed"] == 1
    assert result["gone"] == ["StudyUnavailable", None]


def test_W17_a_partial_study_is_retrieved_series_by_series_without_a_refresh(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const calls = [], progress = [];
  const study = { uid: '1.2', token: 't', wado: { address: 'a' }, series: [{ uid: '1.2.1' }, { uid: '1.2.2' }] };
  const fetchers = {
    study: async () => { throw denied('partial_study'); },
    series: async (address, uid, series, token, options) => {
      calls.push([series, token]); options.onProgress(10); return { instances: 2, bytes: 10 };
    },
  };
  const done = await m.retrieval.retrieveWithRecovery(study, {
    fetchers, onProgress: (n) => progress.push(n), refresh: async () => { throw new Error('no refresh'); },
  });
  return { calls, progress, done: [done.instances, done.bytes, done.bySeries] };
""",
    )
    assert result["calls"] == [["1.2.1", "t"], ["1.2.2", "t"]]
    assert result["progress"] == [10, 20] and result["done"] == [4, 20, True]


def test_WADO_error_bodies_keep_their_message_and_code(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const body = { error: 'partial_study', message: 'only some series of this study may be retrieved' };
  const response = new Response(JSON.stringify(body), { status: 403, headers: { 'Content-Type': 'application/json' } });
  const err = await m.http.httpError('WADO-RS', response);
  return [err.status, err.code, err.detail];
""",
    )
    assert result[0] == 403 and result[1] == "partial_study" and "only some series" in result[2]


def test_W14_a_401_refreshes_too_but_other_errors_do_not(module_page: Any) -> None:
    result = run(
        module_page,
        """
  const study = { uid: '1.2', token: 't', wado: { address: 'a' }, series: [] };
  const failing = (status) => ({ study: async (address) => {
    if (address === 'a') throw new m.http.HttpError('WADO-RS', status, 'x');
    return { instances: 1, bytes: 1 };
  } });
  const fresh = { ...study, wado: { address: 'b' } };
  const attempt = async (status) => {
    let refreshed = 0;
    try {
      await m.retrieval.retrieveWithRecovery(study, { fetchers: failing(status), refresh: async () => { refreshed++; return fresh; } });
      return ['ok', refreshed];
    } catch (err) { return [err.status, refreshed]; }
  };
  return { unauthorized: await attempt(401), gateway: await attempt(502), missing: await attempt(404) };
""",
    )
    assert result == {"unauthorized": ["ok", 1], "gateway": [502, 0], "missing": [404, 0]}
