"""What the imaging authorization server grants (pure): the app's scopes narrowed to imaging.

SMART App Launch 2.x scopes: an app asking for ``patient/*.read``, ``patient/*.rs`` or
``patient/ImagingStudy.cruds`` gets read access to the patient's ImagingStudy only, in the syntax
it asked in (v1 ``patient/ImagingStudy.read``, v2 ``patient/ImagingStudy.rs``); ``launch/patient``
and refresh-token scopes (``offline_access``, ``online_access``) are kept. Everything else,
``openid`` and ``fhirUser`` too, is dropped: this server issues no id_token (the app has the
EHR's) and serves no other resource. RFC 6749 section 3.3: the token response names the scope
granted when it differs from the one asked.
"""

from __future__ import annotations

from ..auth.scopes import grants_read

IMAGING_V1 = "patient/ImagingStudy.read"
IMAGING_V2 = "patient/ImagingStudy.rs"
KEPT = ("launch/patient", "offline_access", "online_access")
REFRESH_SCOPES = ("offline_access", "online_access")
SUPPORTED = (IMAGING_V2, IMAGING_V1, *KEPT)


def granted_scope(requested: str) -> str | None:
    """The scope string to grant, or None when nothing asked for reads imaging."""
    granted: set[str] = set()
    imaging = False
    for scope in requested.split():
        if grants_read(scope, ("ImagingStudy",)):
            permissions = scope.rpartition(".")[2]
            granted.add(IMAGING_V1 if permissions in ("read", "*") else IMAGING_V2)
            imaging = True
        elif scope in KEPT:
            granted.add(scope)
    return " ".join(sorted(granted)) if imaging else None


def narrowed(granted: str, requested: str | None) -> str | None:
    """A refresh request's ``scope`` (RFC 6749 section 6): a subset of what was granted, or None
    when it asks for more."""
    if requested is None:
        return granted
    have, want = set(granted.split()), set(requested.split())
    if not want <= have or granted_scope(requested) is None:
        return None
    return " ".join(sorted(want))


def issues_refresh_token(scope: str) -> bool:
    return any(s in scope.split() for s in REFRESH_SCOPES)


SCOPE_TEXT = {
    IMAGING_V2: "Find and view this patient's imaging studies and images",
    IMAGING_V1: "Find and view this patient's imaging studies and images",
    "launch/patient": "Know which patient is open",
    "offline_access": "Keep this access after you close the app, until it is revoked",
    "online_access": "Keep this access while you are signed in",
}
