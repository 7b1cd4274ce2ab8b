"""Which state store a tenant's authorization server uses: one SQLite file per state folder,
shared by every tenant of the process (rows carry their tenant), opened on first use.

The folder is ``Settings.state_dir`` (``SMART_IMAGING_STATE_DIR``). Unset, it is a private
folder in the system temp dir, with a warning: state then survives a restart of the process but
not of the machine, and replicas do not share it. The default folder must belong to this user
and be closed to others (another user could otherwise plant or read it).
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import Unavailable
from ..settings import state_dir_from_env
from .sqlite_store import SqliteStore

log = logging.getLogger("smart_imaging.oauth")
FILE_NAME = "oauth-state.sqlite3"


def default_state_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"smart-imaging-state-{uid}"


def resolve_state_dir(configured: Path | None) -> tuple[Path, bool]:
    """``(folder, is_default)``: the configured folder, else the environment's, else the default."""
    chosen = configured or state_dir_from_env()
    return (chosen, False) if chosen else (default_state_dir(), True)


def prepare_private_dir(path: Path) -> None:
    """Create the default folder (0700) and refuse one that others own or may enter."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    owner_ok = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    if not owner_ok or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.error("state folder %s is not private to this user: refusing to use it", path)
        raise Unavailable("authorization state store unavailable (state folder is not private)")


def prepare_configured_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & stat.S_IWOTH:
        log.warning("state folder %s is writable by every user", path)


@dataclass
class StoreLease:
    """One user's hold on a shared store; ``aclose`` closes the store with its last lease."""

    store: SqliteStore
    _hub: _Hub
    _open: bool = True

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            if self._hub.release(self.store):
                await self.store.aclose()


class _Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[Path, tuple[SqliteStore, int]] = {}

    def acquire(self, configured: Path | None) -> StoreLease:
        folder, is_default = resolve_state_dir(configured)
        path = (folder / FILE_NAME).absolute()
        with self._lock:
            store, count = self._stores.get(path, (None, 0))
            if store is None:
                if is_default:
                    log.warning(
                        "SMART_IMAGING_STATE_DIR is not set: dual-launch sessions and tokens are kept in "
                        "%s (lost when the machine restarts, not shared by replicas)",
                        folder,
                    )
                prepare = prepare_private_dir if is_default else prepare_configured_dir
                store = SqliteStore(path, prepare=prepare)
            self._stores[path] = (store, count + 1)
            return StoreLease(store, self)

    def release(self, store: SqliteStore) -> bool:
        """Drop one lease; True when it was the last one."""
        with self._lock:
            held, count = self._stores.get(store.path, (None, 0))
            if held is not store:
                return False
            if count <= 1:
                del self._stores[store.path]
                return True
            self._stores[store.path] = (store, count - 1)
            return False


HUB = _Hub()


def acquire(configured: Path | None = None) -> StoreLease:
    """A lease on the store of ``configured`` (or the process default)."""
    return HUB.acquire(configured)
