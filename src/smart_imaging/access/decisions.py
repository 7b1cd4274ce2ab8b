"""What an access decision answers when it says no: :class:`Refused`, with a reason code (pure).

Every decision of this package returns either the scope it allows (a small frozen dataclass of
its own module) or a ``Refused``. Routes render a ``Refused`` by raising :meth:`Refused.error`,
the matching ``smart_imaging.errors`` exception; they never decide themselves. Messages go to the
client: they name what is wrong with the request, never another patient's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import BadRequest, Forbidden, NotFound, SmartImagingError


class Why(Enum):
    """Why access was refused: stable codes for tests and audit records."""

    PATIENT_FROM_REQUEST_DISABLED = "patient-from-request-disabled"  # Meditech without opt-in
    NO_PATIENT_CONTEXT = "no-patient-context"  # the token names no patient
    PATIENT_NOT_NAMED = "patient-not-named"  # a search that names no patient (IG: 403)
    OTHER_PATIENT = "other-patient"  # the request names or was bound to another patient
    IDENTIFIER_MISMATCH = "identifier-mismatch"  # patient.identifier is not the token patient's
    MRN_NEEDED = "mrn-needed"  # checks off, lookup by MRN, and nothing to take an MRN from (400)
    EXPIRED = "expired"  # the binding's lifetime is over
    OTHER_TENANT = "other-tenant"  # the binding was issued by another tenant
    OTHER_STUDY = "other-study"  # the binding is for another study
    UNBOUND_BINDING = "unbound-binding"  # issued with checks off, used where checks are on
    BINDING_WITHOUT_MRN = "binding-without-mrn"  # nothing to check the study's patient against
    STUDY_NOT_FOUND = "study-not-found"  # the archive does not know the study (404)
    MIXED_PATIENTS = "mixed-patients"  # the archive files another patient's data under the study
    POLICY = "policy"  # the tenant's study-level policy refuses (issue 11)
    PARTIAL_STUDY = "partial-study"  # a study-level request of a study allowed only in part
    OTHER_TOKEN = "other-token"  # the binding was issued to another access token
    OUTSIDE_CLIENT_ACCESS = "outside-client-access"  # Backend Services: not the client's patient
    BACKEND_PATIENT_NEEDED = "backend-patient-needed"  # Backend Services: one patient must be named


_STATUS = {Why.MRN_NEEDED: 400, Why.STUDY_NOT_FOUND: 404}
_ERRORS: dict[int, type[SmartImagingError]] = {400: BadRequest, 403: Forbidden, 404: NotFound}


class PartialStudy(Forbidden):
    """403 for a whole-study (or study-level metadata, rendered, QIDO) request of a study the
    policy allows only in part (IG: never a successful partial study). ``"error":
    "partial_study"`` tells a client to retrieve the series its ImagingStudy lists one by one."""

    error = "partial_study"


@dataclass(frozen=True)
class Refused:
    """No access: ``why`` for machines, ``message`` for the client."""

    why: Why
    message: str

    @property
    def status(self) -> int:
        """403, except a request that cannot be answered as asked (400) or an unknown study (404)."""
        return _STATUS.get(self.why, 403)

    def error(self) -> SmartImagingError:
        """The exception a route raises to render this refusal."""
        if self.why is Why.PARTIAL_STUDY:
            return PartialStudy(self.message)
        return _ERRORS[self.status](self.message)
