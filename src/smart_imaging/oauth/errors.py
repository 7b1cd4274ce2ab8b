"""The authorization server's errors, in the project's one exception tree (``smart_imaging.errors``).

Three ways to answer, as RFC 6749 dictates: ``OAuthError`` as JSON from the token, introspection
and revocation endpoints (section 5.2); ``RedirectError`` back to the app's redirect URI once
client and redirect URI are known to be genuine (section 4.1.2.1); ``PageError`` shown to the user
when they are not (an unknown client or redirect URI is never redirected to), or when the browser
session is missing.
"""

from __future__ import annotations

from typing import Any

from ..errors import SmartImagingError


class OAuthError(SmartImagingError):
    code = "invalid"

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.message}


class RedirectError(SmartImagingError):
    """Sent back to the (verified) redirect URI as ``?error=...&error_description=...&state=...``."""

    status = 302
    code = "invalid"

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error


class PageError(SmartImagingError):
    status = 400
    code = "invalid"
    error = "invalid_request"

    def __init__(self, title: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.title = title
        self.status = status
