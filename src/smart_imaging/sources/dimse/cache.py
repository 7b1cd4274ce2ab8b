"""Transfers by key, their cache directories, idle expiry and the size bound.

A request is served by the first live transfer that covers it: the whole study, then its
series, then the instance. Transfers in use (readers, or still running) are never evicted;
complete ones go when idle longer than ``idle_seconds`` or, least recently used first, while
the cache is over ``max_bytes``. Failed transfers leave at once, so the next request retries.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

from .transfer import State, Transfer, TransferKey


class TransferCache:
    def __init__(self, root: Path, idle_seconds: float, max_bytes: int, clock: Callable[[], float]) -> None:
        self.root = root
        self.idle_seconds = idle_seconds
        self.max_bytes = max_bytes
        self.clock = clock
        self._transfers: dict[TransferKey, Transfer] = {}
        self._generation = itertools.count(1)

    def __len__(self) -> int:
        return len(self._transfers)

    def __iter__(self) -> Iterator[Transfer]:
        return iter(list(self._transfers.values()))

    def covering(self, key: TransferKey) -> Transfer | None:
        """A live transfer whose data includes ``key``'s, widest first."""
        candidates = [TransferKey(key.study_uid)]
        if key.series_uid:
            candidates.append(TransferKey(key.study_uid, key.series_uid))
            if key.instance_uid:
                candidates.append(key)
        for candidate in candidates:
            transfer = self._transfers.get(candidate)
            if transfer is not None and transfer.state is not State.FAILED:
                return transfer
        return None

    def directory_for(self, key: TransferKey) -> Path:
        """A fresh directory name: a retry never shares one with a failed attempt's stragglers."""
        name = "\\".join(part or "" for part in (key.study_uid, key.series_uid, key.instance_uid))
        digest = hashlib.sha256(name.encode()).hexdigest()[:32]
        return self.root / f"{digest}.{next(self._generation)}"

    def add(self, transfer: Transfer) -> None:
        transfer.directory.mkdir(parents=True, exist_ok=True)
        self._transfers[transfer.key] = transfer

    def forget(self, transfer: Transfer) -> None:
        """Drop ``transfer`` from the index (its directory is the caller's to delete)."""
        if self._transfers.get(transfer.key) is transfer:
            del self._transfers[transfer.key]

    def touch(self, transfer: Transfer) -> None:
        transfer.last_used = self.clock()

    def expired(self) -> list[Transfer]:
        """Transfers to evict now: idle ones, then least recently used while over the bound."""
        now = self.clock()
        idle = [t for t in self._transfers.values() if _evictable(t)]
        out = [t for t in idle if now - t.last_used > self.idle_seconds]
        total = sum(t.size for t in self._transfers.values()) - sum(t.size for t in out)
        for transfer in sorted((t for t in idle if t not in out), key=lambda t: t.last_used):
            if total <= self.max_bytes:
                break
            out.append(transfer)
            total -= transfer.size
        return out

    def clear(self) -> list[Transfer]:
        transfers = list(self._transfers.values())
        self._transfers.clear()
        return transfers


def _evictable(transfer: Transfer) -> bool:
    return transfer.readers == 0 and transfer.state is State.COMPLETE
