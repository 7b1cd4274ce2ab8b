"""The fast tier's guard: while a test that is not marked ``integration`` runs in a fast-tier
session, listening sockets and child processes are refused and the test fails saying what it
started (see ``tiers.py``)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class TierViolation(RuntimeError):
    """A fast-tier test tried to start a server or a process."""


class ServerGuard:
    """Refuses ``socket.listen`` and child processes while active; remembers each attempt."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    @contextmanager
    def active(self) -> Iterator[None]:
        listen = socket.socket.listen
        execute = subprocess.Popen._execute_child  # type: ignore[attr-defined]
        guard = self

        def refuse_listen(sock: socket.socket, *args: Any) -> None:
            raise guard.refuse(f"a server socket listening on {sock.getsockname()}")

        def refuse_process(popen: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
            raise guard.refuse(f"a child process {args!r}"[:300])

        socket.socket.listen = refuse_listen  # type: ignore[method-assign,assignment]
        subprocess.Popen._execute_child = refuse_process  # type: ignore[attr-defined]
        try:
            yield
        finally:
            socket.socket.listen = listen  # type: ignore[method-assign]
            subprocess.Popen._execute_child = execute  # type: ignore[attr-defined]

    def refuse(self, what: str) -> TierViolation:
        self.attempts.append(what)
        return TierViolation(f"fast-tier test started {what}: mark it integration")

    def check(self) -> None:
        """Fail the current test phase if anything was attempted (also from other threads)."""
        if self.attempts:
            attempts, self.attempts = self.attempts, []
            message = (
                "this test starts servers or processes but is not marked integration "
                "(see tests/support/tiers.py): " + "; ".join(dict.fromkeys(attempts))
            )
            raise pytest.fail.Exception(message, pytrace=False) from None


def guard_wanted(markexpr: str) -> bool:
    """The guard runs in the fast tier (``-m`` excludes integration) or when asked by env."""
    compact = " ".join(markexpr.split())
    return "not integration" in compact or os.environ.get("SMART_IMAGING_TIER_GUARD") == "1"
