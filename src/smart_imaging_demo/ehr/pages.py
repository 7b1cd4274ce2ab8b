"""HTML pages of the sandbox: plain forms, no JavaScript needed. Pure; every value escaped."""

from __future__ import annotations

from html import escape

from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.samples.patients import DemoPatient

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}fieldset{border:1px solid #ccc;border-radius:.4rem;margin:1rem 0}
label{display:block;padding:.3rem 0}.scope{font-family:monospace}.error{color:#a00}
button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.5rem}code{background:#f4f4f4}
"""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def authorize_page(
    *,
    request_id: str,
    client_id: str,
    redirect_uri: str,
    scopes: list[str],
    patients: tuple[DemoPatient, ...],
    pick_patient: bool,
    message: str | None = None,
) -> str:
    """The consent page: pick a patient (when the app wants patient context), approve or deny."""
    items = "".join(f"<li class=scope>{escape(s)}</li>" for s in scopes)
    picker = ""
    if pick_patient:
        choices = "".join(
            f'<label><input type="radio" name="patient" value="{escape(p.id)}" required'
            f"{' checked' if i == 0 else ''}> {escape(p.given)} {escape(p.family)}"
            f" &middot; born {escape(p.birth_date)} &middot; {escape(p.mrn)}</label>"
            for i, p in enumerate(patients)
        )
        picker = f"<fieldset><legend>Patient</legend>{choices}</fieldset>"
    note = f'<p class="error">{escape(message)}</p>' if message else ""
    body = (
        f"<h1>Authorize {escape(client_id)}</h1>{note}"
        f"<p>The app at <code>{escape(redirect_uri)}</code> asks for:</p><ul>{items}</ul>"
        f'<form method="post" action="">'
        f'<input type="hidden" name="request_id" value="{escape(request_id)}">{picker}'
        f'<button type="submit" name="decision" value="approve">Approve</button>'
        f'<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>'
        f"</form><p><small>Demo EHR sandbox: synthetic patients only.</small></p>"
    )
    return _page("Authorize app", body)


def error_page(message: str) -> str:
    return _page(
        "Authorization error",
        f'<h1>Authorization error</h1><p class="error">'
        f"{escape(message)}</p><p>The app was not contacted.</p>",
    )


def home_page(config: EhrConfig) -> str:
    rows = [
        ("FHIR base", config.fhir_base_url),
        ("SMART configuration", f"{config.fhir_base_url}/.well-known/smart-configuration"),
        ("Authorize", config.authorization_endpoint),
        ("Token", config.token_endpoint),
        ("Introspect", config.introspection_endpoint),
    ]
    if config.imaging_fhir_base_url:
        rows.append(("Imaging FHIR base", config.imaging_fhir_base_url))
    if config.dual_imaging_fhir_base_url:
        rows.append(("Imaging FHIR base (dual launch)", config.dual_imaging_fhir_base_url))
    items = "".join(f"<li>{escape(name)}: <code>{escape(url)}</code></li>" for name, url in rows)
    return _page(
        "EHR sandbox",
        "<h1>EHR sandbox</h1><p>A SMART on FHIR sandbox for the demo. "
        "Any client id works as a public client with a redirect URI on localhost, "
        f"127.0.0.1 or this origin (PKCE S256 required).</p><ul>{items}</ul>",
    )
