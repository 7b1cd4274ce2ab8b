"""Starlette routes of the authorization server: authorize (page + form, or silently for
``prompt=none``), token, introspect, revoke, JWKS. Protocol logic lives in ``authorize.py``,
``silent.py`` and ``tokens.py``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from smart_imaging_demo.ehr import authorize, pages, scopes, silent
from smart_imaging_demo.ehr.authorize import AuthorizeRequest
from smart_imaging_demo.ehr.config import EhrConfig
from smart_imaging_demo.ehr.errors import ErrorPage, OAuthError, RedirectError
from smart_imaging_demo.ehr.http import bearer_token, read_form, request_config
from smart_imaging_demo.ehr.keys import Signer
from smart_imaging_demo.ehr.store import CodeRecord, PendingRequest, Store, new_secret
from smart_imaging_demo.ehr.tokens import TokenService
from smart_imaging_demo.samples.patients import PATIENTS, by_id

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_EXPIRED = "This authorization request has expired or was already answered; start again from the app."


class OAuthEndpoints:
    def __init__(self, config: EhrConfig, store: Store, tokens: TokenService, signer: Signer) -> None:
        self.config, self.store, self.tokens, self.signer = config, store, tokens, signer

    def routes(self) -> list[Route]:
        return [
            Route("/authorize", self.authorize_get, methods=["GET"]),
            Route("/authorize", self.authorize_post, methods=["POST"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/introspect", self.introspect, methods=["POST"]),
            Route("/revoke", self.revoke, methods=["POST"]),
            Route("/.well-known/jwks.json", self.jwks, methods=["GET"]),
        ]

    # ------------------------------------------------------------ authorization endpoint

    async def authorize_get(self, request: Request) -> Response:
        config = request_config(self.config, request)
        try:
            valid = authorize.validate(request.query_params.multi_items(), config)
            if valid.prompt_none:
                patient = silent.approve(valid, valid.id_token_hint, config, self.signer, self.store)
                return self._code_redirect(valid, valid.granted_scope, patient)
            if valid.id_token_hint:  # a hint it did not sign is refused even with a consent page
                silent.read_hint(valid, valid.id_token_hint, config, self.signer)
        except ErrorPage as exc:
            return HTMLResponse(pages.error_page(exc.message), exc.status, headers=NO_STORE)
        except RedirectError as exc:
            return RedirectResponse(authorize.error_redirect(exc), 302, headers=NO_STORE)
        pending = PendingRequest(
            valid.client_id,
            valid.redirect_uri,
            " ".join(valid.granted_scope),
            valid.state,
            valid.code_challenge,
            valid.nonce,
            self.config.now() + self.config.pending_request_ttl,
        )
        return self._consent(pending)

    def _consent(self, pending: PendingRequest, message: str | None = None) -> Response:
        request_id = new_secret()
        self.store.save_pending(request_id, pending)
        granted = scopes.split(pending.scope)
        html = pages.authorize_page(
            request_id=request_id,
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            scopes=granted,
            patients=PATIENTS,
            pick_patient=scopes.needs_patient(granted),
            message=message,
        )
        headers = {
            **NO_STORE,
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self' http: https:",
        }
        return HTMLResponse(html, headers=headers)

    async def authorize_post(self, request: Request) -> Response:
        """The consent form: a single-use ``request_id`` stands for the validated request."""
        try:
            form = await read_form(request)
        except OAuthError as exc:
            return HTMLResponse(pages.error_page(exc.message), 400, headers=NO_STORE)
        now = self.config.now()
        pending = self.store.take_pending(form.get("request_id", ""), now)
        if pending is None:
            return HTMLResponse(pages.error_page(_EXPIRED), 400, headers=NO_STORE)
        if form.get("decision") != "approve":
            error = RedirectError(
                "access_denied", "the user denied the request", pending.redirect_uri, pending.state
            )
            return RedirectResponse(authorize.error_redirect(error), 302, headers=NO_STORE)
        patient = form.get("patient")
        if scopes.needs_patient(scopes.split(pending.scope)):
            if patient is None or by_id(patient) is None:
                return self._consent(pending, "Please pick a patient.")
        else:
            patient = None
        consent_until = now + self.config.offline_refresh_ttl
        self.store.remember_consent(pending.client_id, patient, pending.scope, consent_until)
        return self._code_redirect(pending, scopes.split(pending.scope), patient)

    def _code_redirect(
        self, request: PendingRequest | AuthorizeRequest, granted: list[str], patient: str | None
    ) -> Response:
        """Issue a single-use code and send the browser back with it (RFC 6749 4.1.2)."""
        code = new_secret()
        record = CodeRecord(
            request.client_id,
            request.redirect_uri,
            request.code_challenge,
            " ".join(granted),
            patient,
            request.nonce,
            self.config.now() + self.config.code_ttl,
        )
        self.store.save_code(code, record)
        target = authorize.redirect_url(request.redirect_uri, {"code": code, "state": request.state})
        return RedirectResponse(target, 302, headers=NO_STORE)

    # ------------------------------------------------------------ token endpoint & co

    def _tokens(self, request: Request) -> TokenService:
        return self.tokens.at(request_config(self.config, request))

    async def token(self, request: Request) -> Response:
        try:
            body = self._tokens(request).token(await read_form(request))
        except OAuthError as exc:
            return oauth_error(exc)
        return JSONResponse(body, headers=NO_STORE)

    async def introspect(self, request: Request) -> Response:
        """RFC 7662: callers are registered backend clients, by bearer token (their own
        client_credentials token) or by ``private_key_jwt`` in the form."""
        tokens = self._tokens(request)
        try:
            form = await read_form(request)
            if tokens.backend_caller(bearer_token(request)) is None:
                if "client_assertion" not in form:
                    return _unauthorized("introspection needs a backend client's bearer token")
                _, confidential = tokens.authenticate(form)
                assert confidential
        except OAuthError as exc:
            return oauth_error(exc)
        return JSONResponse(tokens.introspect(form.get("token")), headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        try:
            self._tokens(request).revoke(await read_form(request))
        except OAuthError as exc:
            return oauth_error(exc)
        return Response(status_code=200, headers=NO_STORE)

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.signer.jwks(), media_type="application/jwk-set+json")


def oauth_error(exc: OAuthError) -> JSONResponse:
    """RFC 6749 5.2 error body."""
    return JSONResponse(exc.body(), exc.status, headers={**NO_STORE, **exc.headers})


def _unauthorized(description: str) -> JSONResponse:
    challenge = f'Bearer realm="smart-imaging-ehr", error="invalid_token", error_description="{description}"'
    return JSONResponse(
        {"error": "invalid_token", "error_description": description},
        401,
        headers={**NO_STORE, "WWW-Authenticate": challenge},
    )
