"""The app's authorization request (RFC 6749 section 4.1.1, SMART App Launch 2.x), parsed (pure).

In the order RFC 6749 section 4.1.2.1 requires: first ``client_id`` and ``redirect_uri`` (a
problem with either is shown to the user, never redirected: ``PageError``), then the rest (sent
back to the app as ``RedirectError``). Every parameter at most once (section 3.1); PKCE S256
required (RFC 7636); ``state`` required (SMART); ``aud`` must be this tenant's imaging FHIR base.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from . import pkce
from .errors import PageError, RedirectError
from .grants import granted_scope

MAX_VALUE = 4096
MAX_HINT = 16_384  # an id_token


@dataclass(frozen=True)
class AuthorizeRequest:
    client_id: str
    redirect_uri: str
    state: str
    scope: str  # granted (narrowed)
    code_challenge: str
    login_hint: str | None


def client_and_redirect(items: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """``client_id`` and ``redirect_uri``, each exactly once; else a page."""
    values = {}
    for name in ("client_id", "redirect_uri"):
        found = [v for k, v in items if k == name]
        if len(found) != 1 or not found[0] or len(found[0]) > MAX_VALUE:
            raise PageError("Invalid request", f"The request needs exactly one {name}.")
        values[name] = found[0]
    return values["client_id"], values["redirect_uri"]


def state_of(items: Sequence[tuple[str, str]]) -> str | None:
    """The ``state`` to echo in an error redirect: only when given once (section 4.1.2.1)."""
    found = [v for k, v in items if k == "state"]
    return found[0] if len(found) == 1 and 0 < len(found[0]) <= MAX_VALUE else None


def parse_authorize(items: Sequence[tuple[str, str]], fhir_base: str) -> AuthorizeRequest:
    """Check the request once its client and redirect URI are known to be genuine."""
    repeated = sorted(k for k, n in Counter(k for k, _ in items).items() if n > 1)
    if repeated:
        raise RedirectError("invalid_request", f"parameter given more than once: {repeated[0]}")
    query = dict(items)
    if query.get("response_type") != "code":
        raise RedirectError("unsupported_response_type", "only response_type=code is supported")
    state = state_of(items)
    if state is None:
        raise RedirectError("invalid_request", "state is required")
    challenge = query.get("code_challenge", "")
    if query.get("code_challenge_method") != "S256" or not pkce.valid_challenge(challenge):
        raise RedirectError("invalid_request", "PKCE with code_challenge_method=S256 is required")
    if query.get("aud", "").rstrip("/") != fhir_base.rstrip("/"):
        raise RedirectError("invalid_request", "aud must be this server's imaging FHIR base URL")
    scope = granted_scope(query.get("scope", "")[:MAX_VALUE])
    if scope is None:
        raise RedirectError("invalid_scope", "the scope grants no access to ImagingStudy")
    hint = query.get("login_hint") or None
    return AuthorizeRequest(
        client_id=query["client_id"],
        redirect_uri=query["redirect_uri"],
        state=state,
        scope=scope,
        code_challenge=challenge,
        login_hint=hint if hint and len(hint) <= MAX_HINT else None,
    )


def response_url(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """The redirect URI with response parameters added to its query (RFC 6749 section 4.1.2:
    the URI's own query is kept; values are form-encoded)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return redirect_uri + ("&" if "?" in redirect_uri else "?") + query
