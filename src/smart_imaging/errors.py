"""One exception tree. Each error knows its HTTP status and how to describe itself.

Routes render them: FHIR routes as an ``OperationOutcome``, WADO routes as a short JSON
body. Messages must never contain tokens, passwords or stack traces.
"""

from __future__ import annotations


class SmartImagingError(Exception):
    """Base of every error the server answers with a status of its own."""

    status: int = 500
    code: str = "exception"  # FHIR IssueType code
    error: str = "server_error"  # short machine-readable code for JSON bodies

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(SmartImagingError):
    status = 400
    code = "invalid"
    error = "bad_request"


class NotFound(SmartImagingError):
    status = 404
    code = "not-found"
    error = "not_found"


class NotAcceptable(SmartImagingError):
    status = 406
    code = "not-supported"
    error = "not_acceptable"


class Unauthorized(SmartImagingError):
    """401 with an RFC 6750 ``WWW-Authenticate`` challenge (section 3)."""

    status = 401
    code = "login"
    error = "invalid_token"

    def __init__(self, message: str, *, error: str | None = "invalid_token") -> None:
        challenge = 'Bearer realm="smart-imaging"'
        if error:
            challenge += f', error="{error}", error_description="{_quote(message)}"'
        super().__init__(message, headers={"WWW-Authenticate": challenge})
        self.error = error or "missing_token"


class Forbidden(SmartImagingError):
    status = 403
    code = "forbidden"
    error = "forbidden"


class InsufficientScope(Forbidden):
    """403 ``insufficient_scope`` (RFC 6750 section 3.1)."""

    error = "insufficient_scope"

    def __init__(self, message: str, *, scope: str = "") -> None:
        challenge = (
            f'Bearer realm="smart-imaging", error="insufficient_scope", error_description="{_quote(message)}"'
        )
        if scope:
            challenge += f', scope="{scope}"'
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class Unavailable(SmartImagingError):
    """503, optionally with ``Retry-After`` in whole seconds."""

    status = 503
    code = "transient"
    error = "unavailable"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(max(1, int(retry_after)))} if retry_after is not None else None
        super().__init__(message, headers=headers)
        self.retry_after = retry_after


class UpstreamError(SmartImagingError):
    """502: an upstream (archive, EHR) failed or answered garbage."""

    status = 502
    code = "exception"
    error = "bad_gateway"


class IncompleteTransfer(UpstreamError):
    """502: an upstream's answer ended before it was complete (cut, killed, missing parts).

    Raised by a source's body iterator mid-stream: the WADO route then aborts its own response
    so that the client sees a broken transfer, never a clean partial study.
    """


class UpstreamTimeout(SmartImagingError):
    """504: an upstream did not answer in time."""

    status = 504
    code = "timeout"
    error = "gateway_timeout"


class ConfigError(SmartImagingError):
    """A tenant or process configuration is invalid. ``problems`` lists (location, message)."""

    status = 400
    code = "invalid"
    error = "invalid_config"

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def _quote(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")
