"""The SQLite ``StateStore``: expiry, single use under concurrency, purge, persistence across
reopening, private files, and the default folder's safety checks."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from smart_imaging.errors import Unavailable
from smart_imaging.oauth import sqlite_store, stores
from smart_imaging.oauth.sqlite_store import SqliteStore
from smart_imaging.oauth.store import secret_key


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])


async def test_entries_expire_and_reopen_from_disk(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteStore(tmp_path / "s.sqlite3", clock=clock)
    await store.put("token", "k1", {"a": [1, "x"]}, clock.now + 10)
    await store.put("token", "k2", {"b": 2}, clock.now + 100)
    assert await store.get_many([("token", "k1"), ("token", "nope"), ("other", "k1")]) == [
        {"a": [1, "x"]},
        None,
        None,
    ]
    clock.now += 11
    assert await store.get("token", "k1") is None  # expired: absent at once
    assert await store.take("token", "k1") is None
    await store.aclose()
    reopened = SqliteStore(tmp_path / "s.sqlite3", clock=clock)
    assert await reopened.get("token", "k2") == {"b": 2}
    await reopened.aclose()
    assert (tmp_path / "s.sqlite3").stat().st_mode & 0o777 == 0o600


async def test_take_and_add_are_single_use_under_concurrency(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    await store.put("code", "c", {"v": 1}, time.time() + 60)
    taken = await asyncio.gather(*(store.take("code", "c") for _ in range(20)))
    assert taken.count({"v": 1}) == 1 and taken.count(None) == 19
    added = await asyncio.gather(*(store.add("used", "c", {}, time.time() + 60) for _ in range(20)))
    assert added.count(True) == 1
    await store.aclose()


async def test_add_takes_over_an_expired_entry_and_purge_deletes_rows(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path, clock=clock)
    assert await store.add("jti", "j", {"n": 1}, clock.now + 5)
    assert not await store.add("jti", "j", {"n": 2}, clock.now + 5)
    clock.now += 6
    assert await store.add("jti", "j", {"n": 3}, clock.now + 5)  # the old one had expired
    assert await store.get("jti", "j") == {"n": 3}
    for i in range(5):
        await store.put("session", f"s{i}", {}, clock.now + 1)
    assert rows(path) == 6
    clock.now += sqlite_store.PURGE_INTERVAL + 2
    await store.put("session", "fresh", {}, clock.now + 100)  # a write purges what expired
    assert rows(path) == 1
    await store.aclose()


async def test_a_broken_store_is_503_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()  # a folder where the file should be
    store = SqliteStore(tmp_path / "dir.sqlite3")
    with pytest.raises(Unavailable):
        await store.get("token", "k")


def test_secret_keys_are_hashes_not_the_secret() -> None:
    key = secret_key("a-token")
    assert "a-token" not in key and len(key) == 64 and key == secret_key("a-token") != secret_key("b-token")


async def test_the_default_folder_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    monkeypatch.setattr(stores, "default_state_dir", lambda: shared)
    monkeypatch.delenv("SMART_IMAGING_STATE_DIR", raising=False)
    lease = stores.acquire(None)
    with pytest.raises(Unavailable):
        await lease.store.get("token", "k")
    await lease.aclose()
    os.chmod(shared, 0o700)
    lease = stores.acquire(None)
    assert await lease.store.get("token", "k") is None
    await lease.aclose()


async def test_leases_share_one_store_and_close_it_with_the_last(tmp_path: Path) -> None:
    first, second = stores.acquire(tmp_path), stores.acquire(tmp_path)
    assert first.store is second.store
    await first.store.put("k", "v", {}, time.time() + 60)
    await first.aclose()
    assert await second.store.get("k", "v") == {}  # still open for the other holder
    await second.aclose()
    third = stores.acquire(tmp_path)
    assert third.store is not first.store and await third.store.get("k", "v") == {}
    await third.aclose()
