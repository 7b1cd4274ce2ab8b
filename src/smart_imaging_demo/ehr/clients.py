"""Which clients may use the sandbox and how they authenticate. Pure.

Like the public SMART launcher, any ``client_id`` is a public client when its redirect URI is
on ``localhost``/``127.0.0.1``/``[::1]`` (any port) or on the sandbox's own origin. Confidential
clients (``private_key_jwt``) are registered by config; their redirect URIs match exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from smart_imaging_demo.ehr.config import BackendClient, EhrConfig, origin

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Client:
    client_id: str
    registered: BackendClient | None  # None: a public client

    @property
    def is_public(self) -> bool:
        return self.registered is None


def is_acceptable_public_redirect(redirect_uri: str, config: EhrConfig) -> bool:
    """RFC 6749 3.1.2: absolute URI without fragment, on loopback or one of the sandbox's origins."""
    try:
        parts = urlsplit(redirect_uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        return False
    if "#" in redirect_uri or parts.username or parts.password:
        return False
    return parts.hostname.lower() in LOOPBACK_HOSTS or origin(redirect_uri) in config.own_origins()


def client_for_redirect(client_id: str, redirect_uri: str, config: EhrConfig) -> Client | None:
    """The client of an authorization request, or None when the pair is unacceptable."""
    if not client_id or not redirect_uri:
        return None
    registered = config.backend_client(client_id)
    if registered is not None:
        return Client(client_id, registered) if redirect_uri in registered.redirect_uris else None
    if is_acceptable_public_redirect(redirect_uri, config):
        return Client(client_id, None)
    return None
