"""Authorization without the consent page: OpenID Connect Core 1.0 3.1.2.1 ``prompt=none``
with ``id_token_hint``, and the errors of 3.1.2.6.

The sandbox has no login of its own: an ``id_token`` it issued stands for the user's session
(the user is the patient they picked, ``sub`` = patient id). ``prompt=none`` is approved for
that user and patient when the hint is an id_token this sandbox signed, not expired beyond
``EhrConfig.id_token_hint_grace``, issued to a client it knows, and the requesting client is
allowed the granted scope for that patient without asking: a registered client's
``silent_scope`` (the administrator's consent) or what the user approved for it before.
Otherwise the answer goes to the redirect URI: ``login_required`` (no usable session),
``consent_required`` (the user must approve), or ``invalid_request`` for a hint this sandbox did
not sign: never an approval.
"""

from __future__ import annotations

from typing import Any

from joserfc.errors import JoseError

from smart_imaging_demo.ehr import scopes
from smart_imaging_demo.ehr.authorize import AuthorizeRequest
from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.errors import RedirectError
from smart_imaging_demo.ehr.keys import Signer
from smart_imaging_demo.ehr.store import Store
from smart_imaging_demo.samples.patients import by_id

MAX_HINT_BYTES = 16 * 1024


def _fail(request: AuthorizeRequest, error: str, description: str) -> RedirectError:
    return RedirectError(error, description, request.redirect_uri, request.state)


def read_hint(request: AuthorizeRequest, hint: str, config: EhrConfig, signer: Signer) -> dict[str, Any]:
    """The claims of ``id_token_hint`` if this sandbox signed it and it is an id_token of its
    own issuer; ``invalid_request`` otherwise (OpenID Connect Core 3.1.2.2: the OP checks it)."""
    if len(hint) > MAX_HINT_BYTES:
        raise _fail(request, "invalid_request", "id_token_hint is too large")
    try:
        claims = signer.verify(hint)
    except (JoseError, ValueError, TypeError) as exc:
        raise _fail(
            request, "invalid_request", "id_token_hint is not an id_token this sandbox signed"
        ) from exc
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not config.is_own_url(issuer, config.issuer):
        raise _fail(request, "invalid_request", "id_token_hint was issued by another issuer")
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("exp"), int):
        raise _fail(request, "invalid_request", "id_token_hint lacks sub or exp")
    return claims


def approve(
    request: AuthorizeRequest, hint: str | None, config: EhrConfig, signer: Signer, store: Store
) -> str | None:
    """Decide a ``prompt=none`` request: the patient of the silent approval (None when the
    granted scope needs no patient), or raise the OpenID Connect error for the redirect URI."""
    if not hint:
        raise _fail(
            request, "login_required", "prompt=none needs an id_token_hint: the sandbox has no session"
        )
    claims = read_hint(request, hint, config, signer)
    now = config.now()
    if claims["exp"] + config.id_token_hint_grace < now:
        raise _fail(request, "login_required", "the session of id_token_hint has ended")
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    if not any(isinstance(a, str) and _knows(a, config, store) for a in audiences):
        raise _fail(
            request, "login_required", "id_token_hint was issued to a client the sandbox does not know"
        )
    user = by_id(claims["sub"])
    if user is None:
        raise _fail(request, "login_required", "the user of id_token_hint is not known")
    patient = user.id if scopes.needs_patient(request.granted_scope) else None
    if not scopes.within(request.granted_scope, _allowed(request, patient, config, store, now)):
        raise _fail(request, "consent_required", "the user has not approved this client for this scope")
    return patient


def _knows(client_id: str, config: EhrConfig, store: Store) -> bool:
    return config.backend_client(client_id) is not None or store.knows_client(client_id)


def _allowed(
    request: AuthorizeRequest, patient: str | None, config: EhrConfig, store: Store, now: int
) -> list[str]:
    registered = request.client.registered
    allowed = scopes.split(registered.silent_scope) if registered else []
    return allowed + scopes.split(store.consented_scope(request.client.client_id, patient, now))
