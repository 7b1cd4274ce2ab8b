"""``StateStore`` on one SQLite file, so sessions, codes and tokens survive a restart.

One connection in WAL mode (``synchronous=NORMAL``: a commit is durable across a process crash,
an OS crash may lose the last ones: a user signs in again), guarded by a lock. Each call is one
indexed statement on a small table, well under a millisecond, but a commit may wait on the disk
and another thread's transaction: every call runs in a worker thread (``anyio.to_thread``) so
the event loop never waits on SQLite. Expired rows are invisible at once and deleted at most once
a minute, on a write. The file is created readable by its owner only (it holds Patient resources).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from ..errors import Unavailable
from .store import Entry

log = logging.getLogger("smart_imaging.oauth")
T = TypeVar("T")

PURGE_INTERVAL = 60.0
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " expires_at REAL NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS entries_expiry ON entries (expires_at)",
)


class SqliteStore:
    def __init__(
        self,
        path: Path,
        *,
        prepare: Callable[[Path], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._prepare = prepare  # checks or creates the folder, on first use
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._purged = 0.0

    async def put(self, kind: str, key: str, value: Mapping[str, Any], expires_at: float) -> None:
        await self._run(self._put, kind, key, _dump(value), expires_at)

    async def get(self, kind: str, key: str) -> Entry | None:
        return (await self._run(self._get_many, [(kind, key)]))[0]

    async def get_many(self, items: Sequence[tuple[str, str]]) -> list[Entry | None]:
        return await self._run(self._get_many, list(items))

    async def take(self, kind: str, key: str) -> Entry | None:
        return await self._run(self._take, kind, key)

    async def add(self, kind: str, key: str, value: Mapping[str, Any], expires_at: float) -> bool:
        return await self._run(self._add, kind, key, _dump(value), expires_at)

    async def delete(self, kind: str, key: str) -> None:
        await self._run(self._delete, kind, key)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    # ------------------------------------------------------------ in the worker thread

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(self._locked, call, *args)

    def _locked(self, call: Callable[..., T], *args: Any) -> T:
        with self._lock:
            try:
                return call(self._connection(), *args)
            except (sqlite3.Error, OSError) as exc:
                log.warning("state store %s failed: %s", self.path, type(exc).__name__)
                raise Unavailable("authorization state store unavailable", retry_after=5) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._prepare is not None:
                self._prepare(self.path.parent)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            for statement in SCHEMA:
                conn.execute(statement)
            self._conn = conn
        return self._conn

    def _put(self, conn: sqlite3.Connection, kind: str, key: str, value: str, expires_at: float) -> None:
        conn.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", (kind, key, value, expires_at))
        self._maybe_purge(conn)

    def _get_many(self, conn: sqlite3.Connection, items: list[tuple[str, str]]) -> list[Entry | None]:
        now = self._clock()
        out: list[Entry | None] = []
        for kind, key in items:
            row = conn.execute(
                "SELECT value FROM entries WHERE kind = ? AND key = ? AND expires_at > ?", (kind, key, now)
            ).fetchone()
            out.append(_load(row[0]) if row else None)
        return out

    def _take(self, conn: sqlite3.Connection, kind: str, key: str) -> Entry | None:
        row = conn.execute(
            "DELETE FROM entries WHERE kind = ? AND key = ? RETURNING value, expires_at", (kind, key)
        ).fetchone()
        return _load(row[0]) if row and row[1] > self._clock() else None

    def _add(self, conn: sqlite3.Connection, kind: str, key: str, value: str, expires_at: float) -> bool:
        cursor = conn.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET"
            " value = excluded.value, expires_at = excluded.expires_at WHERE entries.expires_at <= ?",
            (kind, key, value, expires_at, self._clock()),
        )
        self._maybe_purge(conn)
        return cursor.rowcount == 1

    def _delete(self, conn: sqlite3.Connection, kind: str, key: str) -> None:
        conn.execute("DELETE FROM entries WHERE kind = ? AND key = ?", (kind, key))

    def _maybe_purge(self, conn: sqlite3.Connection) -> None:
        now = self._clock()
        if now - self._purged >= PURGE_INTERVAL:
            self._purged = now
            conn.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _load(text: str) -> Entry:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
