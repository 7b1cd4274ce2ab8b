"""The decision on a token's claims (pure): the same rules for introspection and local JWTs.

Order: active, not expired (``exp``), not before (``nbf``, JWT), issuer and audience when the
token carries them and the tenant knows what to expect, imaging scopes (see ``scopes``: ``patient/``
scopes, or ``system/`` ones when the policy allows Backend Services for this client). The
patient is chosen by the authorizer (vendors differ) and checked last. Errors follow RFC 6750:
``Unauthorized`` 401 ``invalid_token``; ``InsufficientScope`` 403; ``Forbidden`` 403.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Forbidden, InsufficientScope, Unauthorized
from .scopes import IMAGING_RESOURCES, SUGGESTED_SCOPE, imaging_scopes, parse_scopes, system_imaging_scopes

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 id datatype
NBF_LEEWAY = 30.0


@dataclass(frozen=True)
class TokenPolicy:
    """What a tenant expects of tokens."""

    issuer: str | None = None
    audience: tuple[str, ...] = ()
    resources: tuple[str, ...] = IMAGING_RESOURCES
    check_scopes: bool = True  # False only with disableAuthzChecks
    require_iss_aud: bool = False  # local JWT validation: iss and aud must be present
    system_scopes: bool = False  # a registered backend client: system/ImagingStudy.rs grants too


def check_token(claims: Mapping[str, Any], policy: TokenPolicy, now: float) -> frozenset[str]:
    """Raise unless the token is usable; return the scopes that grant imaging access."""
    if claims.get("active") is not True:
        raise Unauthorized("access token is not active")
    exp = claims.get("exp")
    if exp is not None and (not _number(exp) or exp <= now):
        raise Unauthorized("access token expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _number(nbf) or nbf > now + NBF_LEEWAY):
        raise Unauthorized("access token not yet valid")
    _check_issuer(claims.get("iss"), policy)
    _check_audience(claims.get("aud"), policy)
    scopes = parse_scopes(claims.get("scope"))
    granting = imaging_scopes(scopes, policy.resources)
    if not granting and policy.system_scopes:
        granting = system_imaging_scopes(scopes)
    if policy.check_scopes and not granting:
        raise InsufficientScope("access token has no scope to read ImagingStudy", scope=SUGGESTED_SCOPE)
    return granting if policy.check_scopes else scopes


def _check_issuer(iss: object, policy: TokenPolicy) -> None:
    if iss is None:
        if policy.require_iss_aud:
            raise Unauthorized("access token has no issuer")
        return
    if policy.issuer and iss != policy.issuer:
        raise Unauthorized("access token was issued by another issuer")


def _check_audience(aud: object, policy: TokenPolicy) -> None:
    if aud is None:
        if policy.require_iss_aud:
            raise Unauthorized("access token has no audience")
        return
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
    if values is None:
        raise Unauthorized("access token has an invalid audience")
    if policy.audience and not set(policy.audience) & {str(v).rstrip("/") for v in values}:
        raise Unauthorized("access token is meant for another audience")


def _number(value: object) -> bool:
    """A finite JSON number: ``NaN`` (which Python's json accepts) compares false with every time."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def patient_claim(claims: Mapping[str, Any]) -> str | None:
    """The SMART ``patient`` launch context from the token, when it is a valid FHIR id."""
    value = claims.get("patient")
    if isinstance(value, str) and value.startswith("Patient/"):
        value = value[len("Patient/") :]
    return value if isinstance(value, str) and FHIR_ID.fullmatch(value) else None


def require_patient(patient_id: str | None, optional: bool) -> None:
    """403 for a token without patient context, unless the patient is ``optional`` (checks
    disabled, or an EHR whose tokens name no patient)."""
    if patient_id is None and not optional:
        raise Forbidden("access token has no patient context")


def normalize_audience(audience: str | Iterable[str] | None) -> tuple[str, ...]:
    if audience is None:
        return ()
    values = [audience] if isinstance(audience, str) else list(audience)
    return tuple(v.rstrip("/") for v in values)
