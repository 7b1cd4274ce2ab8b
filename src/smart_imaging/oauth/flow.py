"""The browser side of the dual launch: ``authorize`` -> the EHR -> ``ehr-callback`` -> consent
(``imaging-decision``) -> back to the app with a code.

1. ``authorize``: the client and its redirect URI are checked first (a problem is a page, never a
   redirect), then the request (problems go back to the app). A ``login_hint`` signed by the EHR
   makes the EHR leg silent (``ehr_leg``); any other hint is ignored. The browser session (cookie)
   is opened and the pending authorization bound to it.
2. ``ehr-callback``: the EHR's ``state`` names the pending authorization, which must belong to
   this browser's session. A silent attempt the EHR cannot answer is retried interactively, once.
   The code is exchanged, the id_token verified (``id_token``), the patient taken from the token
   response, the Patient and fhirUser read with the EHR's token. Then a redirect to the consent
   page (so that the EHR's code is not left in the address bar).
3. ``imaging-decision``: GET shows the consent page, POST (with the session's CSRF token) decides.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote

from ..config.tenant import OAuthServerSettings
from ..errors import SmartImagingError, Unavailable, UpstreamError, UpstreamTimeout
from .clients import ClientPolicy, origin_of
from .consent import ConsentView, consent_page, human_name, patient_details
from .ehr_client import EhrClient
from .ehr_leg import Attempt, authorize_url, error_code, falls_back, new_attempt, patient_of, user_url
from .errors import PageError, RedirectError
from .id_token import InvalidIdToken, check_hint, check_id_token, header_of
from .params import client_and_redirect, parse_authorize, response_url, state_of
from .records import EhrContext, Grant, Pending, from_entry, to_entry
from .session import Session, find_session, open_session
from .site import Site
from .store import StateStore, secret_key
from .tokens import TokenService

log = logging.getLogger("smart_imaging.oauth")
PENDING, EHR_STATE = "pending", "ehr-state"
PENDING_LIFETIME = 600.0
ANSWERED_AS_DENIAL = {"access_denied", "login_required", "interaction_required", "consent_required"}


class NoPatient(UpstreamError):
    """The EHR's token response names no patient: nothing to grant imaging access to."""


@dataclass(frozen=True)
class Outcome:
    status: int
    location: str | None = None
    html: str | None = None
    session_cookie: str | None = None  # a new session's cookie value to set
    form_origin: str | None = None  # the consent form's final destination (CSP form-action)


def _redirect(location: str, cookie: str | None = None) -> Outcome:
    return Outcome(302, location=location, session_cookie=cookie)


def _error_for(exc: SmartImagingError) -> str:
    return "temporarily_unavailable" if isinstance(exc, (Unavailable, UpstreamTimeout)) else "server_error"


class BrowserFlow:
    def __init__(
        self,
        store: StateStore,
        policy: ClientPolicy,
        ehr: EhrClient,
        tokens: TokenService,
        settings: OAuthServerSettings,
    ) -> None:
        self._store = store
        self._policy = policy
        self._ehr = ehr
        self._tokens = tokens
        self._settings = settings

    # ------------------------------------------------------------------ 1. authorize

    async def authorize(self, items: Sequence[tuple[str, str]], cookie: str | None, site: Site) -> Outcome:
        client_id, redirect_uri = client_and_redirect(items)
        self._policy.require(client_id, redirect_uri, site.origin)

        def back(error: str, description: str) -> Outcome:
            params = {"error": error, "error_description": description, "state": state_of(items)}
            return _redirect(response_url(redirect_uri, {**params, "iss": site.issuer}))

        try:
            request = parse_authorize(items, site.fhir_base)
        except RedirectError as exc:
            return back(exc.error, exc.message)
        session = await open_session(self._store, cookie, site)
        try:
            hint, hint_subject = await self._verified_hint(request.login_hint)
            pending = Pending(
                id=secrets.token_urlsafe(24),
                tenant=site.tenant,
                session=session.key,
                client_id=client_id,
                redirect_uri=redirect_uri,
                state=request.state,
                scope=request.scope,
                code_challenge=request.code_challenge,
                ehr_redirect_uri=site.ehr_callback,
                hint_subject=hint_subject,
            )
            location = await self._send_to_ehr(pending, hint)
        except SmartImagingError as exc:
            log.warning("authorization at the EHR could not start: %s", exc.message)
            return back(_error_for(exc), "the EHR could not be reached")
        return _redirect(location, session.new_cookie)

    async def _verified_hint(self, hint: str | None) -> tuple[str | None, str | None]:
        """``(hint, its sub)`` when the EHR signed it, else ``(None, None)``: never trusted beyond
        deciding to try a silent sign-in."""
        if not hint or header_of(hint) is None:
            return None, None
        try:
            claims = await self._ehr.verified_claims(hint)
            return hint, check_hint(claims, issuer=await self._ehr.issuer())
        except InvalidIdToken as exc:
            log.info("login_hint ignored: %s", exc.message)
            return None, None

    async def _send_to_ehr(self, pending: Pending, hint: str | None) -> str:
        attempt: Attempt = new_attempt(silent=hint is not None)
        pending = replace(
            pending,
            ehr_state=attempt.state,
            ehr_nonce=attempt.nonce,
            ehr_verifier=attempt.verifier,
            silent=attempt.silent,
        )
        endpoint = await self._ehr.authorization_endpoint()
        expires = time.time() + PENDING_LIFETIME
        await self._store.put(PENDING, pending.id, to_entry(pending), expires)
        await self._store.put(EHR_STATE, secret_key(attempt.state), {"pending": pending.id}, expires)
        return authorize_url(
            endpoint,
            client_id=self._ehr.client_id,
            redirect_uri=pending.ehr_redirect_uri,
            scope=self._ehr.scope,
            aud=self._ehr.fhir_base,
            attempt=attempt,
            hint=hint,
        )

    # ------------------------------------------------------------------ 2. the EHR's answer

    async def ehr_callback(self, query: Mapping[str, str], cookie: str | None, site: Site) -> Outcome:
        pending = await self._pending_for_state(query.get("state"), cookie, site)
        error = query.get("error")
        if error is not None or not query.get("code"):
            return await self._ehr_refused(pending, error_code(error), site)
        try:
            context = await self._ehr_context(pending, query["code"], query.get("iss"))
        except (InvalidIdToken, NoPatient) as exc:
            log.warning("EHR answer refused: %s", exc.message)
            return await self._finish(pending, site, "access_denied", exc.message)
        except SmartImagingError as exc:
            log.warning("EHR leg failed: %s", exc.message)
            return await self._finish(
                pending, site, _error_for(exc), "the EHR could not complete the sign-in"
            )
        pending = replace(pending, context=context)
        if not self._settings.consent:
            await self._store.delete(PENDING, pending.id)
            return _redirect(await self._approve(pending, site))
        await self._store.put(PENDING, pending.id, to_entry(pending), time.time() + PENDING_LIFETIME)
        return Outcome(303, location=f"{site.endpoint('imaging-decision')}?request={quote(pending.id)}")

    async def _pending_for_state(self, state: str | None, cookie: str | None, site: Site) -> Pending:
        link = await self._store.take(EHR_STATE, secret_key(state)) if state and len(state) < 512 else None
        pending = (
            from_entry(Pending, await self._store.get(PENDING, str(link.get("pending")))) if link else None
        )
        if pending is None or pending.tenant != site.tenant:
            raise PageError(
                "Sign-in expired", "This sign-in has expired or was already completed. Start again."
            )
        session = await find_session(self._store, cookie, site)
        if session is None or session.key != pending.session:
            raise PageError("Sign-in refused", "This sign-in was started in another browser session.")
        return pending

    async def _ehr_refused(self, pending: Pending, error: str, site: Site) -> Outcome:
        if falls_back(error, pending.silent):
            log.info("EHR answered %s to the silent sign-in: asking interactively", error)
            try:
                return _redirect(await self._send_to_ehr(pending, hint=None))
            except SmartImagingError as exc:
                return await self._finish(pending, site, _error_for(exc), "the EHR could not be reached")
        app_error = "access_denied" if error in ANSWERED_AS_DENIAL else error
        if app_error not in ("access_denied", "temporarily_unavailable"):
            app_error = "server_error"
        return await self._finish(pending, site, app_error, f"the EHR answered {error}")

    async def _ehr_context(self, pending: Pending, code: str, iss: str | None) -> EhrContext:
        ehr = self._ehr
        issuer = await ehr.issuer()
        if iss is not None and iss != issuer:  # RFC 9207: an answer of another authorization server
            raise InvalidIdToken("the EHR's answer names another issuer")
        response = await ehr.exchange(code, pending.ehr_redirect_uri, pending.ehr_verifier)
        id_token = response.get("id_token")
        if not isinstance(id_token, str):
            raise InvalidIdToken("the EHR answered no id_token")
        claims = await ehr.verified_claims(id_token)
        check_id_token(
            claims,
            issuer=issuer,
            client_id=ehr.client_id,
            nonce=pending.ehr_nonce,
            now=time.time(),
        )
        patient_id = patient_of(response)
        if patient_id is None:
            raise NoPatient("the EHR's token response names no patient")
        token = str(response["access_token"])
        patient = await ehr.read_patient(patient_id, token)
        fhir_user = claims.get("fhirUser") if isinstance(claims.get("fhirUser"), str) else None
        url = user_url(fhir_user, ehr.fhir_base)
        user = await ehr.read_user(url, token) if url else None
        return EhrContext(
            patient_id, patient, str(claims["sub"]), fhir_user, human_name(user) if user else None
        )

    async def _finish(self, pending: Pending, site: Site, error: str, description: str) -> Outcome:
        await self._store.delete(PENDING, pending.id)
        params = {
            "error": error,
            "error_description": description,
            "state": pending.state,
            "iss": site.issuer,
        }
        return _redirect(response_url(pending.redirect_uri, params))

    # ------------------------------------------------------------------ 3. consent

    async def consent(self, request_id: str, cookie: str | None, site: Site) -> Outcome:
        session, pending = await self._own_pending(request_id, cookie, site)
        context = pending.context
        assert context is not None  # checked by _own_pending
        client = self._policy.find(pending.client_id)
        warning = None
        if pending.hint_subject and pending.hint_subject != context.subject:
            warning = "The application's sign-in hint named another EHR user than the one signed in now."
        view = ConsentView(
            request_id=pending.id,
            csrf=session.csrf,
            client_id=pending.client_id,
            client_name=client.name if client else None,
            redirect_origin=origin_of(pending.redirect_uri),
            user=context.user_name or context.fhir_user or context.subject,
            patient=human_name(context.patient) or "(no name)",
            patient_details=patient_details(context.patient),
            scopes=pending.scope.split(),
            warning=warning,
        )
        return Outcome(200, html=consent_page(view), form_origin=origin_of(pending.redirect_uri))

    async def decide(self, form: Mapping[str, str], cookie: str | None, site: Site) -> Outcome:
        session = await find_session(self._store, cookie, site)
        if session is None or not session.csrf_matches(form.get("csrf")):
            raise PageError(
                "Request refused", "This decision was not sent from this server's page.", status=403
            )
        _, pending = await self._own_pending(form.get("request", ""), cookie, site)
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            raise PageError("Invalid request", "Choose Allow or Deny.")
        if await self._store.take(PENDING, pending.id) is None:
            raise PageError("Already decided", "This request was already decided.")
        if decision == "deny":
            params = {"error": "access_denied", "error_description": "the user denied access"}
            params.update(state=pending.state, iss=site.issuer)
            return Outcome(303, location=response_url(pending.redirect_uri, params))
        return Outcome(303, location=await self._approve(pending, site))

    async def _own_pending(self, request_id: str, cookie: str | None, site: Site) -> tuple[Session, Pending]:
        session = await find_session(self._store, cookie, site)
        found = await self._store.get(PENDING, request_id) if request_id and len(request_id) < 100 else None
        pending = from_entry(Pending, found)
        if session is None or pending is None or pending.context is None:
            raise PageError(
                "Request expired", "This request has expired or was already decided. Start again."
            )
        if pending.session != session.key or pending.tenant != site.tenant:
            raise PageError("Request refused", "This request belongs to another browser session.", status=403)
        return session, pending

    async def _approve(self, pending: Pending, site: Site) -> str:
        context = pending.context
        assert context is not None
        grant = Grant(
            tenant=site.tenant,
            client_id=pending.client_id,
            scope=pending.scope,
            patient_id=context.patient_id,
            patient=context.patient,
            family=secrets.token_urlsafe(16),
            fhir_user=context.fhir_user,
            subject=context.subject,
            redirect_uri=pending.redirect_uri,
            code_challenge=pending.code_challenge,
            issued=time.time(),
        )
        code = await self._tokens.issue_code(grant)
        return response_url(pending.redirect_uri, {"code": code, "state": pending.state, "iss": site.issuer})
