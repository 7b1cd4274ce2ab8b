"""The sandbox's state in SQLite: pending authorization requests, codes, tokens, the user's
consents (for ``prompt=none``), used ``jti``s.

Secrets (request ids, codes, tokens) are stored only as their SHA-256, so the database file
does not hold usable credentials. Single use is enforced by conditional updates, atomically.
Registered clients come from the config, public clients need no state.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any, Literal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
  hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, scope TEXT NOT NULL,
  state TEXT, code_challenge TEXT, nonce TEXT, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
  hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,
  code_challenge TEXT, scope TEXT NOT NULL, patient TEXT, nonce TEXT,
  expires_at INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
  patient TEXT, subject TEXT, fhir_user TEXT, grant_type TEXT NOT NULL,
  issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, origin TEXT NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS tokens_origin ON tokens(origin);
CREATE TABLE IF NOT EXISTS consents (
  client_id TEXT NOT NULL, patient TEXT NOT NULL, scope TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, patient));
CREATE TABLE IF NOT EXISTS jtis (
  client_id TEXT NOT NULL, jti TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, jti));
"""


def new_secret() -> str:
    """An opaque random credential (256 bits)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingRequest:
    """An authorization request shown to the user, awaiting approval."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str | None
    nonce: str | None
    expires_at: int


@dataclass(frozen=True)
class CodeRecord:
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    scope: str
    patient: str | None
    nonce: str | None
    expires_at: int


@dataclass(frozen=True)
class TokenRecord:
    kind: Literal["access", "refresh"]
    client_id: str
    scope: str
    patient: str | None
    subject: str | None
    fhir_user: str | None
    grant_type: str
    issued_at: int
    expires_at: int
    origin: str  # the code (hash) or refresh family a token descends from
    revoked: bool = False

    def is_active(self, now: int) -> bool:
        return not self.revoked and now < self.expires_at


Redemption = Literal["ok", "unknown", "used", "expired"]


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # -- pending authorization requests (single use)

    def save_pending(self, request_id: str, pending: PendingRequest) -> None:
        self._insert("pending", digest(request_id), pending)

    def take_pending(self, request_id: str, now: int) -> PendingRequest | None:
        with self._lock:
            row = self._db.execute(
                "DELETE FROM pending WHERE hash = ? RETURNING *", (digest(request_id),)
            ).fetchone()
        pending = PendingRequest(*row[1:]) if row else None
        return pending if pending and now < pending.expires_at else None

    # -- authorization codes (single use, RFC 6749 4.1.2)

    def save_code(self, code: str, record: CodeRecord) -> None:
        self._insert("codes", digest(code), record)

    def redeem_code(self, code: str, now: int) -> tuple[Redemption, CodeRecord | None]:
        key = digest(code)
        with self._lock:
            row = self._db.execute(
                "UPDATE codes SET used = 1 WHERE hash = ? AND used = 0 RETURNING *", (key,)
            ).fetchone()
            if row is None:
                seen = self._db.execute("SELECT 1 FROM codes WHERE hash = ?", (key,)).fetchone()
                return ("used" if seen else "unknown"), None
        record = CodeRecord(*row[1:-1])
        return ("ok" if now < record.expires_at else "expired"), record

    @staticmethod
    def code_origin(code: str) -> str:
        return "code:" + digest(code)

    # -- tokens

    def save_token(self, token: str, record: TokenRecord) -> None:
        self._insert("tokens", digest(token), record)

    def find_token(self, token: str) -> TokenRecord | None:
        names = ", ".join(f.name for f in fields(TokenRecord))
        row = self._run(f"SELECT {names} FROM tokens WHERE hash = ?", (digest(token),)).fetchone()
        if row is None:
            return None
        values = list(row)
        values[-1] = bool(values[-1])
        return TokenRecord(*values)

    def revoke_token(self, token: str) -> bool:
        return (
            self._run(
                "UPDATE tokens SET revoked = 1 WHERE hash = ? AND revoked = 0", (digest(token),)
            ).rowcount
            > 0
        )

    def revoke_origin(self, origin: str) -> int:
        return self._run("UPDATE tokens SET revoked = 1 WHERE origin = ? AND revoked = 0", (origin,)).rowcount

    # -- consents: what the user approved for a client (OpenID Connect Core 3.1.2.1 prompt=none)

    def remember_consent(self, client_id: str, patient: str | None, scope: str, expires_at: int) -> None:
        """The latest approval of ``client_id`` for ``patient`` (None: no patient context)."""
        self._run(
            "INSERT OR REPLACE INTO consents VALUES (?, ?, ?, ?)",
            (client_id, patient or "", scope, expires_at),
        )

    def consented_scope(self, client_id: str, patient: str | None, now: int) -> str | None:
        row = self._run(
            "SELECT scope FROM consents WHERE client_id = ? AND patient = ? AND expires_at > ?",
            (client_id, patient or "", now),
        ).fetchone()
        return str(row[0]) if row else None

    def knows_client(self, client_id: str) -> bool:
        """The sandbox issued tokens to this client or holds a consent for it."""
        row = self._run(
            "SELECT 1 FROM tokens WHERE client_id = ? UNION ALL SELECT 1 FROM consents WHERE client_id = ? "
            "LIMIT 1",
            (client_id, client_id),
        ).fetchone()
        return row is not None

    # -- client assertion jti replay (RFC 7523 3, item 7)

    def remember_jti(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a ``jti``; False when it was seen before (a replay)."""
        cursor = self._run("INSERT OR IGNORE INTO jtis VALUES (?, ?, ?)", (client_id, jti, expires_at))
        return cursor.rowcount == 1

    def purge(self, now: int) -> None:
        """Forget what has expired (jtis only after their assertion's exp)."""
        with self._lock:
            self._db.execute("DELETE FROM pending WHERE expires_at <= ?", (now,))
            self._db.execute("DELETE FROM codes WHERE expires_at <= ?", (now - 3600,))
            self._db.execute("DELETE FROM tokens WHERE expires_at <= ?", (now - 86400,))
            self._db.execute("DELETE FROM jtis WHERE expires_at <= ?", (now,))
            self._db.execute("DELETE FROM consents WHERE expires_at <= ?", (now,))

    def _insert(self, table: str, key: str, record: Any) -> None:
        names = ", ".join(["hash", *(f.name for f in fields(record))])
        marks = ", ".join("?" * (len(fields(record)) + 1))
        self._run(f"INSERT INTO {table} ({names}) VALUES ({marks})", (key, *astuple(record)))
