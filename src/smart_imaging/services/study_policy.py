"""The study-level access policy at work (issue 11.2; IG "Finding studies", "Retrieving images").

:class:`StudyPolicyService` decides, for one tenant with a ``policy`` section, with the tenant's
local rules (``access.policy``) and, when configured, the external decision point
(``policy_client``: fail closed, 503, never a grant); a study needs both to allow it
(``access.policy.intersect``).

- Search: :meth:`StudyPolicyService.visible` drops refused studies and shows partly allowed ones
  with their allowed series only (``access.study_view``). The Bundle's ``total`` counts what is
  returned.
- Retrieval: :meth:`StudyPolicyService.for_retrieval` needs the study's series: it asks the
  source's search for the bound study (by the binding's MRN), decides, and remembers the decision
  per (tenant, study, token digest, patient) for ``RETRIEVAL_TTL`` seconds (at most the decision
  point's own ``cacheTtl``), single flight: a viewer's hundreds of frame requests cost one search
  and one decision. A policy change takes effect for a viewer already retrieving within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import httpx

from ..access.policy import Requester, StudyDecision, decide_study, intersect, needs_series, refused
from ..access.retrieval import RetrievalScope
from ..access.study_view import restrict
from ..auth.decision_cache import DecisionCache, Outcome
from ..config.policy import Policy
from ..dicom.json_model import DicomJson
from ..policy_client import PolicyDecisionClient
from ..sources import ImageSource, StudyQuery, StudyRecord

RETRIEVAL_TTL = 30.0
MAX_DECISIONS = 10_000
PDP_CONCURRENCY = 8  # decision point requests in flight for one search


class StudyPolicyService:
    def __init__(
        self,
        policy: Policy,
        *,
        tenant: str,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        point = policy.decision_point
        self._pdp = PolicyDecisionClient(point, tenant=tenant, http=http, clock=clock) if point else None
        self._ttl = RETRIEVAL_TTL if point is None else min(RETRIEVAL_TTL, point.cache_ttl)
        self._decisions: DecisionCache[StudyDecision] = DecisionCache(MAX_DECISIONS, clock=clock)
        self._limit = asyncio.Semaphore(PDP_CONCURRENCY)

    @property
    def series_needed(self) -> bool:
        """Whether decisions look at series (rules on series attributes, or a decision point)."""
        return self._pdp is not None or needs_series(self.policy)

    @property
    def extra_fields(self) -> tuple[str, ...]:
        """Attributes to ask the archive for beyond the usual ones (``StudyQuery.extra_fields``)."""
        tag = self.policy.confidentiality_attribute
        return (tag,) if tag else ()

    async def decide(
        self, requester: Requester, study: DicomJson, series: Sequence[DicomJson] = ()
    ) -> StudyDecision:
        """Local rules, then (if they allow) the decision point; both must allow."""
        local = decide_study(self.policy, requester, study, series)
        if self._pdp is None or not local.allowed:
            return local
        async with self._limit:
            remote = await self._pdp.decide(requester, study, series)
        return intersect(local, remote)

    async def visible(
        self, requester: Requester, records: Sequence[StudyRecord]
    ) -> list[tuple[StudyRecord, StudyDecision]]:
        """The records a search may show (refused ones dropped, partial ones restricted), each with
        its decision. Raises ``Unavailable`` (503) when the decision point cannot answer."""
        results = await asyncio.gather(
            *(self.decide(requester, r.study, [s.series for s in r.series]) for r in records),
            return_exceptions=True,
        )
        shown: list[tuple[StudyRecord, StudyDecision]] = []
        for record, result in zip(records, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            view = restrict(record, result)
            if view is not None:
                shown.append((view, result))
        return shown

    async def for_retrieval(
        self, requester: Requester, token_digest: str, source: ImageSource, scope: RetrievalScope
    ) -> StudyDecision:
        """The decision on the bound study for this token (cached, see the module doc)."""
        key = "\0".join((scope.tenant, scope.study_uid, token_digest, requester.patient or ""))
        return await self._decisions.get_or_compute(key, lambda: self._decide_study(requester, source, scope))

    async def _decide_study(
        self, requester: Requester, source: ImageSource, scope: RetrievalScope
    ) -> Outcome[StudyDecision]:
        query = StudyQuery(
            scope.mrn,
            (scope.study_uid,),
            include_instances=False,
            include_series=self.series_needed,
            extra_fields=self.extra_fields,
        )
        found = await source.search(query)
        if not found:
            return Outcome.granted(refused(scope.study_uid, "study not found in the archive"), self._ttl)
        record = found[0]
        decision = await self.decide(requester, record.study, [s.series for s in record.series])
        return Outcome.granted(decision, self._ttl)

    async def aclose(self) -> None:
        self._decisions.clear()
        if self._pdp is not None:
            await self._pdp.aclose()
