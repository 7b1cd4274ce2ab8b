"""Test tiers: which tests are ``integration`` and what keeps the fast tier honest.

A test is ``integration`` when it starts real servers or processes: Orthanc, oidc-provider,
Chromium, ``smart-imaging`` subprocesses, uvicorn or any other server over real sockets.
Everything else is the fast tier (``pytest -m "not integration"``): in-process, fakes, no port.

:func:`classify` marks items automatically (``tests/conftest.py`` calls it at collection):

1. an explicit ``@pytest.mark.integration`` / ``pytestmark`` always counts;
2. a path under one of :data:`INTEGRATION_PATHS` (folders or modules known to start servers);
3. a fixture of :data:`SERVER_FIXTURES` among the test's fixtures (their whole closure);
4. a test function, or any fixture it uses, whose source starts a server or a process
   (:data:`SERVER_SIGNS`: ``subprocess.``, ``.listen(``, ``uvicorn.``, ``Orthanc(``...).

:class:`ServerGuard` is the proof: during a fast-tier run (a ``-m`` expression with
``not integration``, or ``SMART_IMAGING_TIER_GUARD=1``) every item not marked integration
runs with ``socket.listen`` and child processes refused, and fails saying what it started. A test
that the rules above miss is then a clear failure of the fast tier, not a slow one: mark it.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Generator, Iterable

import pytest

from . import guard as guard_module
from .guard import ServerGuard, guard_wanted

INTEGRATION = "integration"

# Folders or modules (relative to the repository, "/" separated) whose tests all start servers.
INTEGRATION_PATHS: tuple[str, ...] = (
    "tests/web/",  # the demo process and Chromium
    "tests/demo/test_demo.py",  # the demo on a real socket
    "tests/demo/test_demo_e2e.py",  # `smart-imaging demo` as a subprocess
    "tests/test_serve.py",  # `smart-imaging serve` as a subprocess
    "tests/test_packaging.py",  # pip install into a temp dir, then subprocesses
    "tests/test_ohif_harness.py",  # OHIF over a static server, Chromium
)

# Fixtures (by name, wherever defined) that start a real server or process: the shared
# infrastructure. Fixtures of one module (fake archives, PDPs...) are found by their source.
SERVER_FIXTURES = frozenset(
    {
        # tests/conftest.py
        "orthanc",
        "sample_data",
        "serve",
        "imaging_server",
        # tests/auth/conftest.py: oidc-provider (node) and a test EHR under uvicorn
        "smart_stack",
        "oidc",
        "ehr",
        "smart_config",
        # tests/demo/ehr/conftest.py: the EHR sandbox under uvicorn
        "sandbox_server",
        "sandbox",
        # tests/web/conftest.py and the OHIF harness: demo process, Chromium, static servers
        "demo",
        "browser",
        "page",
        "delayed_imaging",
        "ohif_dist",
        "ohif_browser",
        "proxy",
    }
)

# Source text that starts a server or a process (a test function's or a fixture's own body).
SERVER_SIGNS = re.compile(
    r"\bsubprocess\.|\bPopen\(|\.listen\(|\buvicorn\.|serve_forever|\bsync_playwright\b|"
    r"\b(?:Orthanc|ServerThread|ThreadServer|FakeArchive|FakePdp|DemoProcess|OhifServer|"
    r"ThreadingHTTPServer|HTTPServer|ThreadingTCPServer|TCPServer)\(|"
    r"\b(?:start_server|create_server|install_ohif|launch_browser)\(|\boidc_server\.start\("
)


_GUARD = pytest.StashKey["ServerGuard | None"]()


# Hooks: ``tests/conftest.py`` imports these, so they apply to every test under tests/.
def pytest_configure(config: pytest.Config) -> None:
    wanted = guard_wanted(config.getoption("markexpr", "") or "")
    config.stash[_GUARD] = ServerGuard() if wanted else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    classify(items, str(config.rootpath))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _guarded(item))


def _guarded(item: pytest.Item) -> Generator[None, None, None]:
    """In the fast tier, an unmarked test that starts a server or a process fails."""
    guard = item.config.stash.get(_GUARD, None)
    if guard is None or item.get_closest_marker(INTEGRATION) is not None:
        return (yield)
    with guard.active():
        try:
            result = yield
        except BaseException:
            guard.check()  # the attempt, not what it broke, is the failure to report
            raise
        guard.check()
    return result


def classify(items: Iterable[pytest.Item], rootdir: str) -> None:
    """Add the ``integration`` marker to every item that starts servers (module docstring)."""
    tests_dir = os.path.join(rootdir, "tests")
    scan = SourceScan(tests_dir if os.path.isdir(tests_dir) else rootdir)
    for item in items:
        if item.get_closest_marker(INTEGRATION) is None and _starts_servers(item, rootdir, scan):
            item.add_marker(pytest.mark.integration)


def _starts_servers(item: pytest.Item, rootdir: str, scan: SourceScan) -> bool:
    path = os.path.relpath(str(item.path), rootdir).replace(os.sep, "/")
    if any(path == p or (p.endswith("/") and path.startswith(p)) for p in INTEGRATION_PATHS):
        return True
    names = set(getattr(item, "fixturenames", ()))
    if names & SERVER_FIXTURES:
        return True
    functions = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for name in names:
        for fixturedef in info.name2fixturedefs.get(name, ()) if info else ():
            functions.append(fixturedef.func)
    return any(scan.starts_servers(f) for f in functions if f is not None)


class SourceScan:
    """Whether a function's source, or that of the test helpers it names, shows
    :data:`SERVER_SIGNS`. Helpers: functions and classes defined in files under ``tests_dir``,
    followed three calls deep."""

    def __init__(self, tests_dir: str) -> None:
        self.tests_dir = os.path.realpath(tests_dir) + os.sep
        self.seen: dict[object, bool] = {}

    def starts_servers(self, obj: object, depth: int = 0) -> bool:
        if obj in self.seen:
            return self.seen[obj]
        self.seen[obj] = False  # while looking: a recursion ends here
        found = bool(SERVER_SIGNS.search(self._source(obj))) or (
            depth < 3 and any(self.starts_servers(h, depth + 1) for h in self._helpers(obj))
        )
        self.seen[obj] = found
        return found

    def _source(self, obj: object) -> str:
        try:
            return inspect.getsource(inspect.unwrap(obj))  # type: ignore[arg-type]
        except (OSError, TypeError):  # built-ins and fixtures of plugins have no source of ours
            return ""

    def _helpers(self, obj: object) -> list[object]:
        code = getattr(inspect.unwrap(obj), "__code__", None)  # type: ignore[arg-type]
        if code is None:
            return []
        names = set(code.co_names)
        for const in code.co_consts:  # nested functions and lambdas
            names.update(getattr(const, "co_names", ()))
        scope = getattr(inspect.unwrap(obj), "__globals__", {})  # type: ignore[arg-type]
        found = [scope.get(name) for name in names]
        return [h for h in found if (inspect.isfunction(h) or inspect.isclass(h)) and self._ours(h)]

    def _ours(self, obj: object) -> bool:
        try:
            path = inspect.getsourcefile(inspect.unwrap(obj))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        real = os.path.realpath(str(path)) if path else ""
        return real.startswith(self.tests_dir) and real not in _NOT_HELPERS


# The tiers' own code names sockets and processes to refuse them, not to start them.
_NOT_HELPERS = frozenset(os.path.realpath(f) for f in (__file__, guard_module.__file__))
