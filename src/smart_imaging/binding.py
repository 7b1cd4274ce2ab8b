"""Binding tokens: the opaque segment of a study's WADO-RS Endpoint address.

A binding is a compact JWE (RFC 7516, ``dir`` + ``A256GCM``) sealing the tenant, the study
UID, the FHIR Patient id the grant was bound to (``patient_id``), the MRN (DICOM PatientID) the
study was found by (``mrn``), the digest of the access token that searched (``token_digest``) and
an expiry. Encryption hides the study and patient from anyone holding the URL; the GCM tag makes
any change detectable. The IG ("Retrieving images") asks that such capability URLs be unguessable,
bound to the SMART token that authorized the search and short-lived; each WADO request still needs
that same valid token (``access.retrieval`` decides). Pure: no I/O.

The token digest (:func:`token_digest`) is an HMAC-SHA256 of the token under a key derived from
the binding key for this one purpose: inside the JWE it is encrypted as well, and even a leaked
digest is useless elsewhere (it is not the token's plain hash, which some systems log or index).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
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
    token_digest: str | None = None  # token_digest() of the access token that searched; None: unbound


def key_from_secret(secret: str | None) -> tuple[OctKey, bool]:
    """Derive the 256-bit key from ``SMART_IMAGING_KEY``; random (and flagged) when unset."""
    if secret:
        return OctKey.import_key(
            hashlib.sha256(b"smart-imaging/binding/v1\0" + secret.encode()).digest()
        ), False
    return OctKey.import_key(secrets.token_bytes(32)), True


def token_digest(token: str | None, key: OctKey) -> str:
    """The binding's identity of an access token: HMAC-SHA256 under a key derived from the binding
    key (128 bits, base64url). No token (tenants that need none) has a digest of its own."""
    mac_key = hmac.new(key.raw_value, b"smart-imaging/binding/token-digest/v1", hashlib.sha256).digest()
    digest = hmac.new(mac_key, (token or "").encode("utf-8", "replace"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def same_token(binding: Binding, digest: str) -> bool:
    """Whether the binding was issued to the token whose digest is ``digest`` (constant time)."""
    return binding.token_digest is not None and hmac.compare_digest(binding.token_digest, digest)


def seal(binding: Binding, key: OctKey) -> str:
    claims = {
        "t": binding.tenant,
        "s": binding.study_uid,
        "p": binding.patient_id,
        "m": binding.mrn,
        "x": binding.expires_at,
        "k": binding.token_digest,
        "n": secrets.token_urlsafe(6),
    }
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jwe.encrypt_compact(_HEADER, payload, key, algorithms=_ALGORITHMS)


def open_binding(token: str, key: OctKey, now: float | None = None) -> Binding:
    """Decrypt and check expiry. Any failure is a 403 that says nothing about why in detail."""
    return _unexpired(_decrypt(token, key), now)


def _decrypt(token: str, key: OctKey) -> Binding:
    if len(token) > 4096 or token.count(".") != 4:
        raise Forbidden("invalid study binding")
    try:
        obj = jwe.decrypt_compact(token, key, algorithms=_ALGORITHMS)
        claims = json.loads(obj.plaintext or b"")
        return Binding(
            tenant=str(claims["t"]),
            study_uid=str(claims["s"]),
            patient_id=None if claims["p"] is None else str(claims["p"]),
            expires_at=int(claims["x"]),
            mrn=None if claims.get("m") is None else str(claims["m"]),
            token_digest=None if claims.get("k") is None else str(claims["k"]),
        )
    except (JoseError, ValueError, KeyError, TypeError):
        raise Forbidden("invalid study binding") from None


def _unexpired(binding: Binding, now: float | None) -> Binding:
    if binding.expires_at <= (time.time() if now is None else now):
        raise Forbidden("study binding expired; search ImagingStudy again for a fresh Endpoint")
    return binding


class BindingOpener:
    """:func:`open_binding` with the last ``size`` decrypted bindings kept: a viewer sends the
    same Endpoint address with every frame, and decrypting it (AES-GCM, JSON) was the largest
    cost of the authorization. Only bindings that decrypted are kept (the token is the key: a
    changed byte is another token, decrypted and checked); expiry is checked on every call."""

    def __init__(self, key: OctKey, size: int = 4096) -> None:
        self._key = key
        self._size = size
        self._opened: OrderedDict[str, Binding] = OrderedDict()

    def open(self, token: str, now: float | None = None) -> Binding:
        binding = self._opened.get(token)
        if binding is None:
            binding = _decrypt(token, self._key)
            self._opened[token] = binding
            if len(self._opened) > self._size:
                self._opened.popitem(last=False)
        return _unexpired(binding, now)
