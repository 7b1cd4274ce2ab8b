"""What the authorization server remembers, as plain dataclasses <-> JSON objects (pure).

- ``Pending``: one app's authorization in progress, from ``authorize`` to the decision; bound
  to the browser session that started it; holds the EHR leg's state, nonce and PKCE verifier.
- ``EhrContext``: what the EHR's verified answer says: patient (id and the Patient resource read
  with the EHR's token), user (``fhirUser``, ``sub``). The EHR's tokens themselves are not kept.
- ``Grant``: what a code, and every token of its family, carries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class EhrContext:
    patient_id: str
    patient: dict[str, Any]
    subject: str  # the EHR id_token's ``sub``
    fhir_user: str | None = None
    user_name: str | None = None


@dataclass(frozen=True)
class Pending:
    id: str
    tenant: str
    session: str  # secret_key of the browser session
    client_id: str
    redirect_uri: str
    state: str
    scope: str
    code_challenge: str
    ehr_redirect_uri: str
    ehr_state: str = ""
    ehr_nonce: str = ""
    ehr_verifier: str = ""
    silent: bool = False  # the current EHR attempt is prompt=none
    hint_subject: str | None = None  # ``sub`` of the verified login_hint (shown, never trusted)
    context: EhrContext | None = None


@dataclass(frozen=True)
class Grant:
    tenant: str
    client_id: str
    scope: str
    patient_id: str
    patient: dict[str, Any]
    family: str
    fhir_user: str | None = None
    subject: str | None = None
    redirect_uri: str = ""
    code_challenge: str = ""
    issued: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def to_entry(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def from_entry(cls: type[T], entry: dict[str, Any] | None) -> T | None:
    """The record, or None when absent or not of this shape (a store written by another version)."""
    if entry is None:
        return None
    try:
        if cls is Pending and isinstance(entry.get("context"), dict):
            entry = {**entry, "context": EhrContext(**entry["context"])}
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in entry.items() if k in names})
    except TypeError:
        return None
