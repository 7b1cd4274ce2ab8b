"""OAuth 2.0 errors of the sandbox, in the project's one exception tree.

``error`` is the RFC 6749 code (4.1.2.1 for the authorization endpoint, 5.2 for the token
endpoint). Token endpoint errors answer 400, except ``invalid_client`` which answers 401.
"""

from __future__ import annotations

from smart_imaging.errors import SmartImagingError


class OAuthError(SmartImagingError):
    status = 400
    code = "security"

    def __init__(self, error: str, description: str, *, status: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        if status is not None:
            self.status = status
        if error == "invalid_client" and status is None:
            self.status = 401
            self.headers["WWW-Authenticate"] = 'Bearer realm="smart-imaging-ehr"'

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.message}


class InvalidRequest(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("invalid_request", description)


class InvalidClient(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("invalid_client", description)


class InvalidGrant(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("invalid_grant", description)


class InvalidScope(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("invalid_scope", description)


class RedirectError(OAuthError):
    """An authorization request error reported to the client's redirect URI (RFC 6749
    4.1.2.1), once client and redirect URI are known to be valid."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str | None) -> None:
        super().__init__(error, description, status=302)
        self.redirect_uri = redirect_uri
        self.state = state


class ErrorPage(OAuthError):
    """An authorization request that must never redirect: unknown client or redirect URI
    (RFC 6749 4.1.2.1 first paragraph). Shown to the user as a page."""

    def __init__(self, description: str, *, status: int = 400) -> None:
        super().__init__("invalid_request", description, status=status)
