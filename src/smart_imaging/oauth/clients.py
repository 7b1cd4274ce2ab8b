"""Which apps may use a tenant's authorization server, and where codes may be sent (pure).

Registered clients (``authorization.oauth.clients``) are matched by ``client_id``; their redirect
URIs exactly, character for character (RFC 6749 section 3.1.2.3, OAuth 2.1 section 2.3.1).

Open mode (``openClients``, the default with no clients registered) is for sandboxes: any
``client_id`` that is not a registered one, public only (PKCE, no client secret), and a redirect
URI that is an absolute http(s) URL without fragment on a loopback host (RFC 8252 section 7.3:
any port), on this server's own origin, or on one of ``redirectOrigins``. The consent page shows
that origin. So a code can reach only the user's own machine, this server, or an origin the
operator named, never an attacker's site; PKCE binds it to the app that asked for it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config.tenant import OAuthServerSettings, check_redirect_uri
from .errors import PageError

CLIENT_ID = re.compile(r"[\x21-\x7e]{1,255}")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Client:
    client_id: str
    redirect_uris: tuple[str, ...] = ()
    name: str | None = None
    jwks: dict[str, Any] | None = None  # public keys: a confidential client (private_key_jwt)
    registered: bool = False

    @property
    def confidential(self) -> bool:
        return self.jwks is not None


def origin_of(url: str) -> str:
    """``scheme://host[:port]``, lower case, default port left out (RFC 6454)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    port = parts.port
    return f"{scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS.get(scheme) else "")


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ClientPolicy:
    def __init__(self, settings: OAuthServerSettings) -> None:
        self._registered = {
            c.client_id: Client(c.client_id, tuple(c.redirect_uris), c.name, c.jwks, registered=True)
            for c in settings.clients
        }
        self.open_mode = settings.open_mode
        self._origins = frozenset(origin_of(o) for o in settings.redirectOrigins)

    @property
    def registered(self) -> list[Client]:
        return list(self._registered.values())

    def find(self, client_id: str) -> Client | None:
        """The registered client, or an open-mode client for any other well-formed id."""
        found = self._registered.get(client_id)
        if found is not None:
            return found
        if self.open_mode and CLIENT_ID.fullmatch(client_id):
            return Client(client_id)
        return None

    def require(self, client_id: str, redirect_uri: str, own_origin: str) -> Client:
        """The client, after checking it may receive codes at ``redirect_uri``; else a page."""
        client = self.find(client_id)
        if client is None:
            raise PageError("Unknown application", "This application is not registered with this server.")
        if client.registered:
            if redirect_uri not in client.redirect_uris:
                raise PageError(
                    "Unregistered redirect URI",
                    "The application asked to be sent back to an address it has not registered.",
                )
            return client
        self._check_open_redirect(redirect_uri, own_origin)
        return client

    def _check_open_redirect(self, redirect_uri: str, own_origin: str) -> None:
        try:
            check_redirect_uri(redirect_uri)
        except ValueError as exc:
            raise PageError("Invalid redirect URI", f"The redirect URI is not usable: {exc}.") from None
        origin = origin_of(redirect_uri)
        if is_loopback(redirect_uri) or origin == origin_of(own_origin) or origin in self._origins:
            return
        raise PageError(
            "Redirect URI not allowed",
            "In open mode this server sends codes only to loopback addresses, its own origin or "
            "the origins its operator configured.",
        )
