"""Which SMART scopes let an app read a patient's imaging (pure).

SMART App Launch 2.x, section "Scopes for requesting clinical data": v1 scopes end in
``.read``/``.write``/``.*``; v2 scopes end in a permission string that is an ordered subset of
``cruds``. Reading imaging needs *search* and *read*, so a v2 scope grants it only when its
permissions contain both ``r`` and ``s`` (``.rs``, ``.cruds``...). Only ``patient/`` scopes count
for App Launch: ``user/`` scopes never give access to a patient's images here. ``system/`` scopes
(``system/ImagingStudy.rs`` or a covering wildcard: the IG's Backend Services mode) grant only for
a tenant's registered backend clients (:func:`system_imaging_scopes`, applied by
``claims.check_token``). v2 scopes narrowed by a query (``patient/ImagingStudy.rs?category=...``)
are not honoured: we cannot apply the restriction, so they grant nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

IMAGING_RESOURCES: tuple[str, ...] = ("ImagingStudy",)
SUGGESTED_SCOPE = "patient/ImagingStudy.rs"
SYSTEM_SCOPE = "system/ImagingStudy.rs"
_V2_ORDER = "cruds"


def parse_scopes(scope: object) -> frozenset[str]:
    """Split an RFC 6749 ``scope`` value (space-delimited); anything else is no scope at all."""
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):  # lenient: JSON arrays
        return frozenset(s for item in scope for s in item.split())
    return frozenset()


def is_v2_permissions(permissions: str) -> bool:
    """True when ``permissions`` is a non-empty, ordered, duplicate-free subset of ``cruds``."""
    position = -1
    for char in permissions:
        index = _V2_ORDER.find(char)
        if index <= position:
            return False
        position = index
    return bool(permissions)


def grants_read(scope: str, resources: Iterable[str] = IMAGING_RESOURCES, context: str = "patient") -> bool:
    """Whether one scope lets the app search and read ``resources`` in ``context`` (``patient``:
    for its patient; ``system``: a backend client's pre-authorized access)."""
    given, slash, rest = scope.partition("/")
    if given != context or not slash or "?" in rest:
        return False
    resource, dot, permissions = rest.rpartition(".")
    if not dot or (resource != "*" and resource not in tuple(resources)):
        return False
    if permissions in ("read", "*"):  # SMART v1
        return True
    return is_v2_permissions(permissions) and "r" in permissions and "s" in permissions


def imaging_scopes(scopes: Iterable[str], resources: Iterable[str] = IMAGING_RESOURCES) -> frozenset[str]:
    """The subset of ``scopes`` that grants reading imaging; empty means no access."""
    allowed = tuple(resources)
    return frozenset(s for s in scopes if grants_read(s, allowed))


def system_imaging_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The ``system/`` scopes that cover ImagingStudy search and read (IG Backend Services:
    ``system/ImagingStudy.rs``, "a granted wildcard covering the same interactions MAY also be used")."""
    return frozenset(s for s in scopes if grants_read(s, IMAGING_RESOURCES, "system"))
