"""Stopping the servers tests start as child processes (kept here for existing imports; the
helpers live in ``tests.support.processes``)."""

from __future__ import annotations

from .support.processes import stop_process, wait_for_url

__all__ = ["stop_process", "wait_for_url"]
