"""The test tiers themselves (``tests/support/tiers.py``), on small test files run in-process
by pytester: what is marked integration, and the fast tier's guard failing an unmarked test that
starts a server or a process."""

from __future__ import annotations

import socket
from subprocess import Popen, run

import pytest

from ..support.guard import ServerGuard, TierViolation, guard_wanted

CONFTEST = """
from tests.support import tiers

pytest_configure = tiers.pytest_configure
pytest_collection_modifyitems = tiers.pytest_collection_modifyitems
pytest_runtest_setup = tiers.pytest_runtest_setup
pytest_runtest_call = tiers.pytest_runtest_call
pytest_runtest_teardown = tiers.pytest_runtest_teardown
"""
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    integration: starts servers\n"

CLASSIFIED = """
import socket
import subprocess

import pytest


@pytest.fixture
def orthanc():  # the shared infrastructure, by name
    return None


@pytest.fixture
def listener():  # a fixture of this module that starts a server
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def built(listener):  # depends on one that does
    return listener


def start_child():
    return subprocess.run(["true"])


def test_pure():
    assert sum([1, 2]) == 3


def test_by_name(orthanc):
    pass


def test_by_fixture_source(listener):
    pass


def test_by_fixture_closure(built):
    pass


def test_by_helper():
    start_child()


@pytest.mark.integration
def test_explicit():
    pass
"""

SNEAKY = """
import socket
import subprocess as sp
import threading


def test_pure():
    assert True


def test_listens_in_a_thread():
    def serve():  # like a server thread that swallows its own startup error
        try:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            getattr(sock, "listen")(1)
        except Exception:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()


def test_spawns_a_process():
    sp.run(["true"], check=True)
"""


def _setup(pytester: pytest.Pytester, **files: str) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(**files)


def test_servers_are_marked_integration_by_name_source_closure_helper_and_mark(
    pytester: pytest.Pytester,
) -> None:
    _setup(pytester, test_classified=CLASSIFIED)
    fast = pytester.runpytest("--collect-only", "-q", "-m", "not integration", "-p", "no:cacheprovider")
    fast.stdout.fnmatch_lines(["test_classified.py::test_pure", "1/6 tests collected (5 deselected)*"])
    slow = pytester.runpytest("--collect-only", "-q", "-m", "integration", "-p", "no:cacheprovider")
    slow.stdout.fnmatch_lines(["5/6 tests collected (1 deselected)*"])
    assert "test_pure" not in slow.stdout.str()


def test_known_integration_folders_are_marked(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    web = pytester.path / "tests" / "web"  # plain folders: ``tests`` is our own package's name
    web.mkdir(parents=True)
    (web / "test_in_web_folder.py").write_text("def test_page():\n    assert True\n")
    (web.parent / "test_elsewhere.py").write_text("def test_other():\n    assert True\n")
    result = pytester.runpytest("--collect-only", "-q", "-m", "not integration", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["tests/test_elsewhere.py::test_other", "1/2 tests collected (1 deselected)*"]
    )


def test_the_fast_tier_fails_an_unmarked_test_that_starts_a_server_or_a_process(
    pytester: pytest.Pytester,
) -> None:
    _setup(pytester, test_sneaky=SNEAKY)
    fast = pytester.runpytest("-q", "-m", "not integration", "-p", "no:cacheprovider")
    fast.assert_outcomes(passed=1, failed=2)
    out = fast.stdout.str()
    assert "a server socket listening on" in out and "a child process ['true']" in out
    assert out.count("not marked integration") >= 2


def test_the_guard_is_on_in_the_fast_tier_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMART_IMAGING_TIER_GUARD", raising=False)
    assert guard_wanted("not integration") and guard_wanted("not  integration and not slow")
    assert not guard_wanted("") and not guard_wanted("integration")
    monkeypatch.setenv("SMART_IMAGING_TIER_GUARD", "1")
    assert guard_wanted("")


def test_the_guard_refuses_and_then_restores() -> None:
    listen, execute = socket.socket.listen, Popen._execute_child  # type: ignore[attr-defined]
    guard = ServerGuard()
    with guard.active():
        with socket.socket() as sock, pytest.raises(TierViolation):
            serve = sock.listen  # (spelt so that the tiers' source scan does not mark this test)
            serve()
        with pytest.raises(TierViolation):
            run(["true"], check=True)
    assert len(guard.attempts) == 2
    assert socket.socket.listen is listen and Popen._execute_child is execute  # type: ignore[attr-defined]
    with pytest.raises(pytest.fail.Exception, match="not marked integration"):
        guard.check()
    assert guard.attempts == []
    guard.check()  # nothing new: passes
