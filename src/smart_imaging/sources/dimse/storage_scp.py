"""Our Storage SCP: the C-MOVE destination (PS3.4 C.4.2). One per listening port, shared.

The archive opens its own association to us and sends each instance with C-STORE. Instances
are routed by their study/series/instance UIDs to the transfers waiting for them; one nobody
waits for (a cancelled transfer, a stray send) is refused with 0xA702.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from .part10 import EncodedDataSet, InstanceKeys
from .progress import SUCCESS
from .scu import REFUSED_OUT_OF_RESOURCES, TRANSFER_SYNTAXES, Receiver, store_event
from .spool import discard_spools, track_spool

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Route:
    """Instances of this study (series, instance) go to ``receive``."""

    study_uid: str
    series_uid: str | None
    instance_uid: str | None
    receive: Receiver

    def wants(self, keys: InstanceKeys) -> bool:
        return (
            keys.study_uid == self.study_uid
            and self.series_uid in (None, keys.series_uid)
            and self.instance_uid in (None, keys.sop_instance_uid)
        )


class StorageScp:
    """A pynetdicom Storage SCP listening on ``port`` that hands instances to routes."""

    def __init__(self, ae_title: str, port: int, host: str = "") -> None:
        self.ae_title = ae_title
        self.port = port
        self._lock = threading.Lock()
        self._routes: list[Route] = []
        ae = AE(ae_title=ae_title)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(str(cx.abstract_syntax), list(TRANSFER_SYNTAXES))
        ae.add_supported_context(Verification)
        server = ae.start_server(
            (host, port),
            block=False,
            evt_handlers=[
                (evt.EVT_C_STORE, self._on_store),
                (evt.EVT_DIMSE_RECV, track_spool),
                (evt.EVT_CONN_CLOSE, self._on_close),
            ],
        )
        assert server is not None  # block=False returns the running server
        self._server = server

    def add(self, route: Route) -> None:
        with self._lock:
            self._routes.append(route)

    def remove(self, route: Route) -> None:
        with self._lock:
            if route in self._routes:
                self._routes.remove(route)

    def close(self) -> None:
        associations = list(self._server.active_associations)
        self._server.shutdown()
        for assoc in associations:
            discard_spools(assoc)

    def _on_store(self, event: Any) -> int:
        return store_event(event, self._dispatch)

    def _on_close(self, event: Any) -> None:
        """The archive's connection closed (DUL thread): delete what it sent but was not handled."""
        discard_spools(event.assoc)

    def _dispatch(self, keys: InstanceKeys, dataset: EncodedDataSet) -> int:
        with self._lock:
            routes = [r for r in self._routes if r.wants(keys)]
        statuses = [route.receive(keys, dataset) for route in routes]
        if SUCCESS in statuses:
            return SUCCESS
        log.info("refused an instance no transfer is waiting for")
        return REFUSED_OUT_OF_RESOURCES


class ScpRegistry:
    """Storage SCPs by port, started on first use and stopped when no source needs them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scps: dict[int, tuple[StorageScp, int]] = {}

    def acquire(self, ae_title: str, port: int) -> StorageScp:
        with self._lock:
            scp, users = self._scps.get(port, (None, 0))
            if scp is None:
                scp = StorageScp(ae_title, port)
            elif scp.ae_title != ae_title:
                log.warning("storage port %d is shared by AE titles %s and %s", port, scp.ae_title, ae_title)
            self._scps[port] = (scp, users + 1)
            return scp

    def release(self, scp: StorageScp) -> None:
        with self._lock:
            current, users = self._scps.get(scp.port, (None, 0))
            if current is not scp:
                return
            if users > 1:
                self._scps[scp.port] = (scp, users - 1)
                return
            del self._scps[scp.port]
        scp.close()

    def __iter__(self) -> Iterator[StorageScp]:
        with self._lock:
            return iter([scp for scp, _ in self._scps.values()])


SCPS = ScpRegistry()
