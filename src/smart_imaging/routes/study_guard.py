"""Before the first retrieval of a study, check it holds no other patient's data.

A binding names the study and the MRN it was found by. Archives with inconsistent data can file
instances of two patients under one StudyInstanceUID; the study-level search then shows another
PatientID and the retrieval is refused (403). Sources that can filter instances (folder) also get
the MRN in ``WadoRequest.patient_id``. Verified (tenant, study, MRN) triples are remembered for a
few minutes so that a viewer's hundreds of requests cost one search.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from ..dicom import json_model as dj
from ..dicom import tags
from ..errors import Forbidden, NotFound
from ..sources import StudyQuery
from ..tenants.registry import Tenant

TTL = 300.0
MAX_ENTRIES = 10_000


class StudyGuard:
    def __init__(self, ttl: float = TTL, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._verified: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    async def check(self, tenant: Tenant, study_uid: str, mrn: str) -> None:
        key = (tenant.key, study_uid, mrn)
        expires = self._verified.get(key)
        if expires is not None and expires > time.monotonic():
            self._verified.move_to_end(key)
            return
        query = StudyQuery(
            patient_id=None, study_uids=(study_uid,), include_instances=False, include_series=False
        )
        records = await tenant.source.search(query)
        if not records:
            raise NotFound("study not found in the image archive")
        if any(dj.text(r.study, tags.PatientID) != mrn for r in records):
            raise Forbidden("the archive files data of another patient under this study")
        self._verified[key] = time.monotonic() + self._ttl
        while len(self._verified) > self._max:
            self._verified.popitem(last=False)
