"""Binding tokens: the opaque segment of a study's WADO-RS Endpoint address.

A binding is a compact JWE (RFC 7516, ``dir`` + ``A256GCM``) sealing the tenant, the study
UID, the FHIR Patient id the grant was bound to (``patient_id``), the MRN (DICOM PatientID) the
study was found by (``mrn``), and an expiry. Encryption hides the study and patient from anyone
holding the URL; the GCM tag makes any change detectable. The IG asks that such capability URLs
be unguessable, bound to the token's patient and short-lived; each WADO request still needs a
valid access token for the same patient (``access.retrieval`` decides). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from .errors import Forbidden

_ALGORITHMS = ["dir", "A256GCM"]
_HEADER = {"alg": "dir", "enc": "A256GCM"}


@dataclass(frozen=True)
class Binding:
    tenant: str
    study_uid: str
    patient_id: str | None  # the grant's FHIR Patient id; None: issued with disableAuthzChecks
    expires_at: int
    mrn: str | None = None  # the DICOM PatientID (0010,0020) the study was found by


def key_from_secret(secret: str | None) -> tuple[OctKey, bool]:
    """Derive the 256-bit key from ``SMART_IMAGING_KEY``; random (and flagged) when unset."""
    if secret:
        return OctKey.import_key(
            hashlib.sha256(b"smart-imaging/binding/v1\0" + secret.encode()).digest()
        ), False
    return OctKey.import_key(secrets.token_bytes(32)), True


def seal(binding: Binding, key: OctKey) -> str:
    claims = {
        "t": binding.tenant,
        "s": binding.study_uid,
        "p": binding.patient_id,
        "m": binding.mrn,
        "x": binding.expires_at,
        "n": secrets.token_urlsafe(6),
    }
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jwe.encrypt_compact(_HEADER, payload, key, algorithms=_ALGORITHMS)


def open_binding(token: str, key: OctKey, now: float | None = None) -> Binding:
    """Decrypt and check expiry. Any failure is a 403 that says nothing about why in detail."""
    if len(token) > 4096 or token.count(".") != 4:
        raise Forbidden("invalid study binding")
    try:
        obj = jwe.decrypt_compact(token, key, algorithms=_ALGORITHMS)
        claims = json.loads(obj.plaintext or b"")
        binding = Binding(
            tenant=str(claims["t"]),
            study_uid=str(claims["s"]),
            patient_id=None if claims["p"] is None else str(claims["p"]),
            expires_at=int(claims["x"]),
            mrn=None if claims.get("m") is None else str(claims["m"]),
        )
    except (JoseError, ValueError, KeyError, TypeError):
        raise Forbidden("invalid study binding") from None
    if binding.expires_at <= (time.time() if now is None else now):
        raise Forbidden("study binding expired; search ImagingStudy again for a fresh Endpoint")
    return binding
