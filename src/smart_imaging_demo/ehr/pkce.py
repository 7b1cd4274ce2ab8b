"""PKCE (RFC 7636) with the S256 method only, as SMART App Launch 2 requires."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# RFC 7636 4.1: 43 to 128 unreserved characters; 4.2: the S256 challenge is 43 base64url chars.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")

SUPPORTED_METHODS = ("S256",)


def s256_challenge(verifier: str) -> str:
    """``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`` without padding (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_valid_verifier(verifier: str) -> bool:
    return _VERIFIER.fullmatch(verifier) is not None


def is_valid_challenge(challenge: str) -> bool:
    return _CHALLENGE.fullmatch(challenge) is not None


def verify(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 4.6: the verifier must hash to the challenge stored with the code."""
    if verifier is None or not is_valid_verifier(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
