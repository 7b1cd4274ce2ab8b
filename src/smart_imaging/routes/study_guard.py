"""Before the first retrieval of a study, ask the archive whether it holds another patient's data.

The decision is ``access.retrieval.check_study`` (pure); this is its I/O: the study-level search
for the bound study, and a cache of confirmed (tenant, study, MRN) triples, so that a viewer's
hundreds of requests cost one search. Sources that can filter instances (folder) also get the
MRN in ``WadoRequest.mrn``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..access.decisions import Refused
from ..access.retrieval import RetrievalScope, check_study
from ..cache import TtlCache
from ..sources import ImageSource, StudyQuery

TTL = 300.0
MAX_ENTRIES = 10_000


class StudyGuard:
    def __init__(
        self, ttl: float = TTL, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._confirmed: TtlCache[tuple[str, str, str], bool] = TtlCache(max_entries, ttl=ttl, clock=clock)

    async def confirm(self, source: ImageSource, scope: RetrievalScope) -> RetrievalScope | Refused:
        """``scope`` once the archive's answer confirms it (or it needs no confirming), else why not."""
        if scope.mrn is None:
            return scope
        key = (scope.tenant, scope.study_uid, scope.mrn)
        if self._confirmed.get(key):
            return scope
        query = StudyQuery(None, (scope.study_uid,), include_instances=False, include_series=False)
        decision = check_study(scope, [record.study for record in await source.search(query)])
        if isinstance(decision, RetrievalScope):
            self._confirmed.put(key, True)
        return decision
