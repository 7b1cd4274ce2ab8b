"""The public URLs of one tenant's authorization server, for one request (pure).

Derived from ``Settings.base_url`` when set, else from the request (``routes.context``): behind
a proxy, set the base URL so that ``aud``, ``issuer`` and the EHR callback are stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from .clients import origin_of


@dataclass(frozen=True)
class Site:
    tenant: str  # the tenant's key, bound into every record
    tenant_base: str  # {base}/{tenant path}

    @property
    def fhir_base(self) -> str:
        return f"{self.tenant_base}/fhir"

    @property
    def oauth_base(self) -> str:
        return f"{self.tenant_base}/oauth"

    @property
    def issuer(self) -> str:
        return self.oauth_base

    def endpoint(self, name: str) -> str:
        return f"{self.oauth_base}/{name}"

    @property
    def ehr_callback(self) -> str:
        return self.endpoint("ehr-callback")

    @property
    def origin(self) -> str:
        return origin_of(self.tenant_base)

    @property
    def cookie_path(self) -> str:
        return urlsplit(self.oauth_base).path or "/"

    @property
    def secure(self) -> bool:
        return self.tenant_base.startswith("https://")
