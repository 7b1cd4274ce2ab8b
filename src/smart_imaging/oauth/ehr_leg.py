"""The imaging server's own SMART launch at the EHR (pure): the request and how to read the answer.

SMART App Launch 2.x standalone launch with OpenID Connect: ``response_type=code``, our EHR
client, ``redirect_uri`` = our ``ehr-callback``, ``scope`` (``openid fhirUser launch/patient``
and a Patient read scope), ``state``, ``nonce``, ``aud`` = the EHR's FHIR base, PKCE S256. When
the app passed a login_hint that the EHR signed, the first attempt is silent: ``prompt=none``
with ``id_token_hint`` (OpenID Connect Core 1.0 section 3.1.2.1). When the EHR cannot answer a
silent attempt (``login_required``, ``interaction_required``, ``consent_required``,
``account_selection_required``, or ``invalid_request`` from EHRs that do not accept a hint issued
to another client) the user is sent again, interactively, without hint: once.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..auth.claims import FHIR_ID, patient_claim
from . import pkce

SILENT_FAILURES = frozenset(
    {
        "login_required",
        "interaction_required",
        "consent_required",
        "account_selection_required",
        "invalid_request",
    }
)
ERROR_CODE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 appendix A.7
RESOURCE_TYPES = ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person")


@dataclass(frozen=True)
class Attempt:
    state: str
    nonce: str
    verifier: str
    silent: bool


def new_attempt(silent: bool) -> Attempt:
    return Attempt(secrets.token_urlsafe(32), secrets.token_urlsafe(32), pkce.new_verifier(), silent)


def authorize_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    aud: str,
    attempt: Attempt,
    hint: str | None,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": attempt.state,
        "nonce": attempt.nonce,
        "aud": aud,
        "code_challenge": pkce.s256(attempt.verifier),
        "code_challenge_method": "S256",
    }
    if attempt.silent and hint:
        params.update(prompt="none", id_token_hint=hint)
    return endpoint + ("&" if urlsplit(endpoint).query else "?") + urlencode(params)


def error_code(value: str | None) -> str:
    """The EHR's ``error``, or ``server_error`` when it is not a well-formed code."""
    return value if value and ERROR_CODE.fullmatch(value) else "server_error"


def falls_back(error: str, silent: bool) -> bool:
    return silent and error in SILENT_FAILURES


def patient_of(token_response: dict[str, Any]) -> str | None:
    """The ``patient`` launch context of the EHR's token response (a FHIR id)."""
    return patient_claim(token_response)


def user_url(fhir_user: object, fhir_base: str) -> str | None:
    """Where to read the ``fhirUser`` resource: only a resource of a person type of this EHR
    (an absolute URL under its FHIR base, or a relative reference), never any other URL."""
    if not isinstance(fhir_user, str):
        return None
    base = fhir_base.rstrip("/")
    relative = fhir_user[len(base) + 1 :] if fhir_user.startswith(base + "/") else fhir_user
    kind, slash, ident = relative.partition("/")
    if not slash or kind not in RESOURCE_TYPES or not FHIR_ID.fullmatch(ident):
        return None
    return f"{base}/{kind}/{ident}"
