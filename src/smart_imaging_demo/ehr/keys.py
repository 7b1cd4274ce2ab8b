"""The sandbox's own signing key (for OpenID Connect ``id_token``s), generated into the data
dir at first run and never committed. Published at ``jwks_uri``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

ID_TOKEN_ALG = "RS256"  # OpenID Connect Core 15.1: the algorithm every RP supports
KEY_FILE = "ehr-signing-key.json"


class Signer:
    def __init__(self, key: RSAKey) -> None:
        self._key = key

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Signer:
        path = data_dir / KEY_FILE
        if path.exists():
            return cls(RSAKey.import_key(json.loads(path.read_text("utf-8"))))
        key = RSAKey.generate_key(2048, parameters={"alg": ID_TOKEN_ALG, "use": "sig"}, auto_kid=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(key.as_dict(private=True), handle)
        return cls(key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a JWT this key signed (signature and algorithm only; the caller checks
        the claims). Raises :class:`joserfc.errors.JoseError` or ``ValueError`` otherwise."""
        return dict(jwt.decode(token, self._key, algorithms=[ID_TOKEN_ALG]).claims)

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": ID_TOKEN_ALG, "kid": self._key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self._key, algorithms=[ID_TOKEN_ALG])
