"""The browser session of a tenant's authorization server: one cookie, one CSRF token.

The cookie holds a random session id (the store keeps only its hash) and is scoped to the
tenant's ``/oauth`` path: ``HttpOnly``, ``SameSite=Lax`` (sent on the EHR's top-level redirect
back to ``ehr-callback``, not on cross-site POSTs), ``Secure`` on https. Each session has a random
CSRF token that the consent form carries in a hidden field; a decision without the session's token
is refused. Every pending authorization is bound to the session that started it, so a code or an
EHR answer injected into another browser is refused (RFC 6749 section 10.12).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from .site import Site
from .store import StateStore, secret_key

COOKIE = "smart_imaging_oauth"
LIFETIME = 3600.0
KIND = "session"


@dataclass(frozen=True)
class Session:
    key: str  # secret_key(cookie value)
    csrf: str
    new_cookie: str | None = None  # set when this request created the session

    def csrf_matches(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(self.csrf.encode(), (value or "").encode())


async def find_session(store: StateStore, cookie: str | None, site: Site) -> Session | None:
    if not cookie or len(cookie) > 200:
        return None
    key = secret_key(cookie)
    entry = await store.get(KIND, key)
    if entry is None or entry.get("tenant") != site.tenant or not isinstance(entry.get("csrf"), str):
        return None
    return Session(key, entry["csrf"])


async def open_session(store: StateStore, cookie: str | None, site: Site) -> Session:
    """The browser's session at this tenant, or a new one."""
    found = await find_session(store, cookie, site)
    if found is not None:
        return found
    value, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    key = secret_key(value)
    await store.put(KIND, key, {"tenant": site.tenant, "csrf": csrf}, time.time() + LIFETIME)
    return Session(key, csrf, new_cookie=value)


def set_cookie_header(site: Site, value: str) -> str:
    secure = "; Secure" if site.secure else ""
    return (
        f"{COOKIE}={value}; Path={site.cookie_path}; Max-Age={int(LIFETIME)}; HttpOnly; SameSite=Lax{secure}"
    )
