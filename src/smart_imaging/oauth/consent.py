"""The pages the authorization server shows: consent and errors (pure HTML, no JavaScript).

Every value from the app, the EHR or the request is escaped (``html.escape``, quotes too): a
Patient named ``<script>`` is shown as text. The consent form posts back to this server with the
session's CSRF token in a hidden field (``flow.decide`` checks it); the route sends the pages
with a Content-Security-Policy that allows no script, no framing and no form target but this
server and the app's redirect origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from .grants import SCOPE_TEXT

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    ".box{border:1px solid #bbb;border-radius:8px;padding:1rem 1.5rem}dt{font-weight:600}"
    "dd{margin:0 0 .6rem 0}button{padding:.5rem 1.2rem;margin-right:.5rem;border-radius:4px;border:1px solid #888}"
    ".approve{background:#0b5cad;color:#fff}.warn{color:#8a4b00}"
)


@dataclass(frozen=True)
class ConsentView:
    request_id: str
    csrf: str
    client_id: str
    client_name: str | None
    redirect_origin: str
    user: str
    patient: str
    patient_details: str
    scopes: Sequence[str]
    warning: str | None = None


def human_name(resource: object) -> str | None:
    """A display name from a FHIR resource's first ``HumanName`` (``text``, else given + family)."""
    names = resource.get("name") if isinstance(resource, dict) else None
    if not isinstance(names, list) or not names or not isinstance(names[0], dict):
        return None
    name: dict[str, Any] = names[0]
    if isinstance(name.get("text"), str) and name["text"].strip():
        return str(name["text"]).strip()[:200]
    given_list = name.get("given")
    given = [g for g in given_list if isinstance(g, str)] if isinstance(given_list, list) else []
    family = name.get("family")
    text = " ".join([*given, family if isinstance(family, str) else ""]).strip()
    return text[:200] or None


def patient_details(patient: dict[str, Any]) -> str:
    birth = patient.get("birthDate")
    parts = [
        f"born {birth}" if isinstance(birth, str) and len(birth) <= 32 else "",
        f"id {patient.get('id')}",
    ]
    return ", ".join(p for p in parts if p)


def consent_page(view: ConsentView) -> str:
    app = escape(view.client_name or view.client_id)
    scopes = "".join(f"<li>{escape(SCOPE_TEXT.get(s, s))}</li>" for s in view.scopes)
    warning = f'<p class="warn">{escape(view.warning)}</p>' if view.warning else ""
    body = (
        f"<h1>Allow access to imaging?</h1><div class=box>"
        f"<p>The application <strong>{app}</strong> asks to see imaging through this server.</p>"
        f"<dl><dt>Application</dt><dd>{escape(view.client_id)} (returns to {escape(view.redirect_origin)})</dd>"
        f"<dt>Signed in at the EHR as</dt><dd>{escape(view.user)}</dd>"
        f"<dt>Patient</dt><dd>{escape(view.patient)} ({escape(view.patient_details)})</dd>"
        f"<dt>It will be able to</dt><dd><ul>{scopes}</ul></dd></dl>{warning}"
        f'<form method="post" action="imaging-decision">'
        f'<input type="hidden" name="request" value="{escape(view.request_id)}">'
        f'<input type="hidden" name="csrf" value="{escape(view.csrf)}">'
        f'<button class="approve" type="submit" name="decision" value="approve">Allow</button>'
        f'<button type="submit" name="decision" value="deny">Deny</button>'
        f"</form></div>"
    )
    return _page("Allow access to imaging?", body)


def error_page(title: str, message: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><div class=box><p>{escape(message)}</p></div>")


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
