"""Before the first retrieval of a study, ask the archive whether it holds another patient's data.

The decision is ``access.retrieval.check_study`` (pure); this is its I/O: the study-level search
for the bound study, and a cache of confirmed (tenant, study, MRN) triples, so that a viewer's
hundreds of requests cost one search. Sources that can filter instances (folder) also get the
MRN in ``WadoRequest.mrn``.

With shared state (``smart_imaging.state`` on Redis) a confirmation is also written there, under
a digest of the triple (no MRN or UID in Redis) in a namespace of the tenant configs (``scope``),
so a study confirmed by one replica is not searched again by the others; a copy read from there
lives here only for the seconds it has left. Only confirmations are shared: a refusal is searched
again. An unreachable store is a miss (the archive is asked).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping

from ..access.decisions import Refused
from ..access.retrieval import RetrievalScope, check_study
from ..cache import TtlCache
from ..config.tenant import TenantConfig
from ..sources import ImageSource, StudyQuery
from ..state import SharedState, StateUnavailable, digest, scoped

TTL = 300.0
MAX_ENTRIES = 10_000
CONFIRMED = "1"


class StudyGuard:
    def __init__(
        self,
        ttl: float = TTL,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedState | None = None,
    ) -> None:
        """``shared``: where confirmations are shared with other replicas (already in this
        guard's namespace), or None for this process only."""
        self._ttl = ttl
        self._confirmed: TtlCache[tuple[str, str, str], bool] = TtlCache(max_entries, ttl=ttl, clock=clock)
        self._shared = shared

    async def confirm(self, source: ImageSource, scope: RetrievalScope) -> RetrievalScope | Refused:
        """``scope`` once the archive's answer confirms it (or it needs no confirming), else why not."""
        if scope.mrn is None:
            return scope
        key = (scope.tenant, scope.study_uid, scope.mrn)
        if self._confirmed.get(key) or await self._confirmed_elsewhere(key):
            return scope
        query = StudyQuery(None, (scope.study_uid,), include_instances=False, include_series=False)
        decision = check_study(scope, [record.study for record in await source.search(query)])
        if isinstance(decision, RetrievalScope):
            self._confirmed.put(key, True)
            await self._share(key)
        return decision

    async def _confirmed_elsewhere(self, key: tuple[str, str, str]) -> bool:
        if self._shared is None:
            return False
        try:
            found = await self._shared.get_ttl(digest(*key))
        except StateUnavailable:
            return False
        if found is None or found[0] != CONFIRMED:
            return False
        self._confirmed.put(key, True, min(found[1], self._ttl))
        return True

    async def _share(self, key: tuple[str, str, str]) -> None:
        if self._shared is not None:
            with contextlib.suppress(StateUnavailable):  # confirmed here; the outage is logged once
                await self._shared.set(digest(*key), CONFIRMED, self._ttl)


def shared_guard(state: SharedState, tenants: Mapping[str, TenantConfig]) -> StudyGuard:
    """The app's guard: sharing confirmations when ``state`` is shared with other processes, in
    a namespace of the static tenant configs (replicas with another config do not share them)."""
    if not state.shared:
        return StudyGuard()
    configs = (f"{name}\0{config.model_dump_json()}" for name, config in sorted(tenants.items()))
    return StudyGuard(shared=scoped(state, "guard", digest(*configs)))
