"""PKCE (RFC 7636) with the S256 method only: the plain method gives no protection when the
authorization request leaks, and SMART App Launch 2.x requires S256."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # section 4.1
CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")  # base64url of 32 bytes, no padding (section 4.2)


def s256(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(code_verifier)))`` (section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters, 384 bits


def valid_challenge(challenge: str) -> bool:
    return CHALLENGE.fullmatch(challenge) is not None


def verifies(verifier: str | None, challenge: str) -> bool:
    """True when ``verifier`` is well formed and hashes to ``challenge`` (section 4.6)."""
    if not verifier or VERIFIER.fullmatch(verifier) is None:
        return False
    return hmac.compare_digest(s256(verifier), challenge)
