"""Authorizers: who is asking, for which patient. Built from ``authorization.type``.

One ``ComposedAuthorizer`` (``authorizer``) made of small parts (``parts``): a token verifier
(``mock`` | ``introspection`` | ``jwt_tokens``), a patient resolver (``mock`` | ``patients``),
vendor ``quirks`` and, for EHRs whose tokens name no patient, a request binder (``pins``).
``smart_imaging.tenants.authorizers`` composes them from a tenant config.
"""

from __future__ import annotations

from .authorizer import ComposedAuthorizer
from .base import AccessGrant, Authorizer, AuthRequest

__all__ = ["AccessGrant", "AuthRequest", "Authorizer", "ComposedAuthorizer"]
