"""SMART scopes (App Launch 2.x section 3): parsing, granting and access checks. Pure.

Clinical scopes are ``{context}/{ResourceType|*}.{permissions}`` with v1 permissions
``read``/``write``/``*`` or v2 permissions, a subset of ``cruds`` in that order. The sandbox
only reads and searches, so it grants the ``r``/``s`` part of what is asked (v1 ``read`` and
``*`` become ``read``); write-only scopes, ``user/`` scopes and v2 query refinements are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RESOURCE_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "AllergyIntolerance",
        "MedicationRequest",
        "ImagingStudy",
        "Endpoint",
    }
)
LAUNCH_SCOPES = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch/patient",
        "offline_access",
        "online_access",
    }
)
SCOPES_SUPPORTED = (
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "patient/*.read",
    "patient/Patient.rs",
    "patient/Condition.rs",
    "patient/AllergyIntolerance.rs",
    "patient/MedicationRequest.rs",
    "patient/ImagingStudy.rs",
    "patient/ImagingStudy.read",
    "system/*.read",
    "system/Patient.read",
    "system/*.rs",
    "system/ImagingStudy.rs",
)

_CLINICAL = re.compile(r"(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)")


@dataclass(frozen=True)
class ClinicalScope:
    context: str  # patient | user | system
    resource_type: str  # a FHIR type or "*"
    permissions: frozenset[str]  # subset of {"c","r","u","d","s"}
    text: str

    def covers(self, resource_type: str, interaction: str) -> bool:
        return self.resource_type in ("*", resource_type) and interaction in self.permissions


def split(scope: str | None) -> list[str]:
    """Space-separated scope tokens (RFC 6749 3.3), duplicates removed, order kept."""
    return list(dict.fromkeys((scope or "").split()))


def parse_clinical(token: str) -> ClinicalScope | None:
    match = _CLINICAL.fullmatch(token)
    if match is None:
        return None
    context, resource_type, perms = match.groups()
    if perms in ("read", "*"):
        permissions = frozenset("rs")
    elif perms == "write":
        permissions = frozenset("cud")
    elif _is_v2_permissions(perms):
        permissions = frozenset(perms)
    else:
        return None
    return ClinicalScope(context, resource_type, permissions, token)


def _is_v2_permissions(perms: str) -> bool:
    order = "cruds"
    positions = [order.find(ch) for ch in perms]
    return bool(perms) and -1 not in positions and positions == sorted(set(positions))


def _readable_form(token: str) -> str | None:
    """The read/search part of one clinical scope, in the scope's own version, or None."""
    parsed = parse_clinical(token)
    if parsed is None or parsed.resource_type not in RESOURCE_TYPES | {"*"}:
        return None
    prefix, perms = token.rsplit(".", 1)
    if perms in ("read", "*"):
        return f"{prefix}.read"
    if perms == "write":
        return None
    kept = "".join(ch for ch in perms if ch in "rs")
    return f"{prefix}.{kept}" if kept else None


def grant_user_scopes(requested: str | None) -> list[str]:
    """What an authorization code flow grants: launch/identity scopes and ``patient/`` read
    scopes of known types. Everything else is silently left out (RFC 6749 3.3 allows it)."""
    granted: list[str] = []
    for token in split(requested):
        if token in LAUNCH_SCOPES:
            granted.append(token)
        elif token.startswith("patient/") and (readable := _readable_form(token)):
            granted.append(readable)
    return list(dict.fromkeys(granted))


def grant_system_scopes(requested: str | None, registered: str) -> list[str]:
    """What ``client_credentials`` grants: requested ``system/`` scopes the client's registered
    scope covers (all registered ones when none are asked for)."""
    allowed = [s for s in map(parse_clinical, split(registered)) if s and s.context == "system"]
    granted: list[str] = []
    for token in split(requested) or split(registered):
        readable = _readable_form(token) if token.startswith("system/") else None
        wanted = parse_clinical(readable) if readable else None
        if wanted and any(_within(wanted, a) for a in allowed):
            granted.append(wanted.text)
    return list(dict.fromkeys(granted))


def _within(wanted: ClinicalScope, allowed: ClinicalScope) -> bool:
    same_type = allowed.resource_type in ("*", wanted.resource_type)
    return same_type and wanted.permissions <= allowed.permissions


def within(wanted: list[str], allowed: list[str]) -> bool:
    """Every wanted scope is allowed: the same token, or a clinical scope of the same context
    that an allowed one covers (``patient/Patient.rs`` within ``patient/*.rs``)."""
    parsed = [a for a in map(parse_clinical, allowed) if a]
    for token in wanted:
        clinical = parse_clinical(token)
        if token in allowed:
            continue
        if clinical is None or not any(
            a.context == clinical.context and _within(clinical, a) for a in parsed
        ):
            return False
    return True


def needs_patient(scopes: list[str]) -> bool:
    """A patient must be picked when the launch asks for patient context or patient data."""
    return "launch/patient" in scopes or any(s.startswith("patient/") for s in scopes)


def wants_refresh(scopes: list[str]) -> bool:
    return "offline_access" in scopes or "online_access" in scopes


def allows(scopes: list[str], context: str, resource_type: str, interaction: str) -> bool:
    """True when a granted scope of ``context`` permits ``interaction`` (``r`` or ``s``)."""
    for token in scopes:
        parsed = parse_clinical(token)
        if parsed and parsed.context == context and parsed.covers(resource_type, interaction):
            return True
    return False


def narrow(current: list[str], requested: str | None) -> list[str] | None:
    """Refresh with ``scope`` (RFC 6749 6): only a subset of the granted scope; None if wider."""
    asked = split(requested)
    if not asked:
        return current
    return asked if set(asked) <= set(current) else None
