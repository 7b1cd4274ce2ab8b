// SMART App Launch (standalone, public client): discovery, PKCE S256, state, token exchange,
// refresh before expiry, disconnect. With a server's dualLaunch setting, a second launch at the
// imaging server's own authorization server follows the EHR's (dual.js). The session lives in
// sessionStorage (this tab only).

import { tracedFetch, note, redactUrl, redactJson } from "./trace.js";
import { httpError, HttpError, LaunchError } from "./http.js";
import * as dual from "./dual.js";
import { imagingClient } from "./settings.js";

const PENDING = "smart-imaging-viewer.pending";
const SESSION = "smart-imaging-viewer.session";
const REFRESH_MARGIN_S = 60;
export const IMAGING_CAPABILITY = "smart-imaging-access";
// IG "Discovery": clients using in-band discovery SHALL check the mode's capability as well.
export const APP_LAUNCH_CAPABILITY = "http://fhir.org/argonaut/smart-imaging/capabilities/app-launch";

export function base64url(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function randomString(bytes = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export async function s256(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

export function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

/** SMART discovery: .well-known/smart-configuration, else the CapabilityStatement's oauth-uris. */
export async function discover(iss, step = "discovery") {
  const url = `${iss.replace(/\/+$/, "")}/.well-known/smart-configuration`;
  const { response, finish } = await tracedFetch(step, url, { headers: { Accept: "application/json" } });
  if (response.ok) {
    const config = await response.json();
    finish();
    if (!config.authorization_endpoint || !config.token_endpoint) {
      throw new LaunchError(`${url} names no authorization_endpoint or token_endpoint`);
    }
    return config;
  }
  finish();
  const meta = await tracedFetch(step, `${iss}/metadata`, { headers: { Accept: "application/fhir+json" } });
  if (!meta.response.ok) throw await httpError("SMART discovery", response);
  const capability = await meta.response.json();
  meta.finish();
  const ext = (capability.rest || []).flatMap((r) => (r.security && r.security.extension) || [])
    .find((e) => /oauth-uris$/.test(e.url));
  const uri = (name) => ((ext && ext.extension) || []).find((e) => e.url === name)?.valueUri;
  if (!uri("authorize") || !uri("token")) {
    throw new LaunchError(`${iss} publishes no SMART configuration (neither .well-known/smart-configuration nor oauth-uris)`);
  }
  return { authorization_endpoint: uri("authorize"), token_endpoint: uri("token"), capabilities: [] };
}

/**
 * The imaging FHIR base: the server's override when set (out-of-band configuration), else the
 * EHR's associated_endpoints entry with capabilities smart-imaging-access and the IG's app-launch
 * (smart-imaging-access-dual-launch for dual launch).
 */
export function imagingBase(server, config) {
  const dualLaunch = Boolean(server.dualLaunch);
  if (server.imagingOverride) return { url: server.imagingOverride, from: "override", dualLaunch };
  const url = dualLaunch ? dual.associatedEndpoint(config, dual.DUAL_CAPABILITY)
    : dual.associatedEndpoint(config, IMAGING_CAPABILITY, APP_LAUNCH_CAPABILITY);
  return url ? { url, from: "associated_endpoints", dualLaunch } : null;
}

/** Start the launch: remember state + verifier, send the browser to the authorize endpoint. */
export async function beginLaunch(server, { launch = null, navigate = (u) => location.assign(u) } = {}) {
  const config = await discover(server.iss);
  if ((config.code_challenge_methods_supported || ["S256"]).indexOf("S256") < 0) {
    throw new LaunchError("the EHR does not support PKCE S256");
  }
  const imaging = imagingBase(server, config);
  if (server.dualLaunch) dual.checkDualServer(server, imaging);
  const verifier = randomString(48);
  const state = randomString(24);
  const params = new URLSearchParams({
    response_type: "code", client_id: server.clientId, redirect_uri: redirectUri(),
    scope: server.scope, state, aud: server.iss,
    code_challenge: await s256(verifier), code_challenge_method: "S256",
  });
  if (launch) params.set("launch", launch);
  sessionStorage.setItem(PENDING, JSON.stringify({
    leg: "ehr", state, verifier, server, config, imaging, startedAt: Date.now(),
  }));
  const url = `${config.authorization_endpoint}?${params}`;
  note("authorize", { method: "GET", url: redactUrl(url), status: "redirect",
    detail: "browser sent to the EHR's authorization endpoint" });
  navigate(url);
}

export function hasCallback(params) {
  return params.has("state") && (params.has("code") || params.has("error"));
}

/**
 * Finish a launch leg on the redirect back: check state, exchange the code. Resolves with the
 * session, or with null when the browser is on its way to the imaging leg of a dual launch.
 */
export async function completeLaunch(params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  const leg = (pending && pending.leg) || "ehr";
  note(dual.stepName("authorize", leg), { method: "GET", url: redactUrl(location.href), status: "callback",
    detail: params.has("error") ? `error=${params.get("error")}` : "code received" });
  if (!pending) throw new LaunchError("This page got an authorization response it did not ask for (no launch in progress in this tab).", "no_pending_launch");
  sessionStorage.removeItem(PENDING);
  if (params.get("state") !== pending.state) {
    throw new LaunchError("The authorization response carries the wrong state: refused (possible CSRF).", "state_mismatch");
  }
  if (leg === "imaging") return finishImagingLeg(pending, params);
  if (params.has("error")) throw callbackError(params, leg);
  const token = await tokenRequest(pending.config.token_endpoint, {
    grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(),
    client_id: pending.server.clientId, code_verifier: pending.verifier,
  }, "token");
  if (!token.patient) throw new LaunchError("The token response names no patient: ask for launch/patient.", "no_patient");
  const session = {
    server: pending.server, config: pending.config, imaging: pending.imaging,
    accessToken: token.access_token, refreshToken: token.refresh_token || null,
    expiresAt: Date.now() + 1000 * Number(token.expires_in || 3600),
    scope: token.scope || pending.server.scope, patient: token.patient,
  };
  if (pending.server.dualLaunch) {
    await beginImagingLeg(session, token.id_token);
    return null;
  }
  saveSession(session);
  return session;
}

function callbackError(params, leg) {
  const description = params.get("error_description");
  const who = dual.legName(leg);
  const text = params.get("error") === "access_denied"
    ? `Authorization was denied at ${who}: the app got no access.`
    : `${who === "the EHR" ? "The EHR" : "The imaging server's authorization server"} refused the authorization: ${params.get("error")}`;
  return new LaunchError(description ? `${text} (${description})` : text, params.get("error"));
}

/** The imaging leg of a dual launch: discovery at the imaging FHIR base, then its authorize. */
export async function beginImagingLeg(session, idToken, { navigate = (u) => location.assign(u) } = {}) {
  dual.checkDualServer(session.server, session.imaging);
  const config = dual.checkImagingConfig(await discover(session.imaging.url, "discovery (imaging)"), session.imaging.url);
  const client = imagingClient(session.server);
  const verifier = randomString(48);
  const state = randomString(24);
  const url = dual.imagingAuthorizeUrl(config, {
    clientId: client.clientId, redirectUri: redirectUri(), scope: client.scope, state,
    aud: session.imaging.url, idToken, challenge: await s256(verifier),
  });
  sessionStorage.setItem(PENDING, JSON.stringify({ leg: "imaging", state, verifier, session, config, clientId: client.clientId }));
  note("authorize (imaging)", { method: "GET", url: redactUrl(url), status: "redirect",
    detail: "browser sent to the imaging server's authorization endpoint, login_hint = the EHR's id_token" });
  navigate(url);
}

async function finishImagingLeg(pending, params) {
  try {
    if (params.has("error")) throw callbackError(params, "imaging");
    return await completeImagingLeg(pending, params.get("code"));
  } catch (err) {
    await disconnect(pending.session); // no half session: the EHR's token is revoked as well
    throw err;
  }
}

async function completeImagingLeg(pending, code) {
  const token = await tokenRequest(pending.config.token_endpoint, {
    grant_type: "authorization_code", code, redirect_uri: redirectUri(),
    client_id: pending.clientId, code_verifier: pending.verifier,
  }, "token (imaging)", "The imaging server's token endpoint");
  const grant = dual.imagingGrant(token, pending.session.patient);
  const session = {
    ...pending.session,
    imaging: { ...pending.session.imaging, config: pending.config, clientId: pending.clientId, ...grant },
  };
  saveSession(session);
  return session;
}

async function tokenRequest(endpoint, fields, step, what = "The EHR's token endpoint") {
  const body = new URLSearchParams(fields);
  const { response, entry, finish } = await tracedFetch(step, endpoint, {
    method: "POST", body, headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
  });
  if (!response.ok) { finish(); throw await httpError(what, response); }
  const json = await response.json();
  finish({ responseBody: redactJson(json) });
  if (!json.access_token) throw new LaunchError("The token response has no access_token");
  if (json.token_type && json.token_type.toLowerCase() !== "bearer") {
    throw new LaunchError(`Unsupported token_type ${json.token_type}`);
  }
  void entry;
  return json;
}

export function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION) || "null"); } catch { return null; }
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION, JSON.stringify(session));
}

export function needsRefresh(session, now = Date.now()) {
  return session.expiresAt - now < REFRESH_MARGIN_S * 1000;
}

/** Refresh the access token when it is about to expire; returns the (maybe new) session. */
export async function ensureFresh(session) {
  if (!needsRefresh(session)) return session;
  if (!session.refreshToken) {
    if (session.expiresAt > Date.now()) return session;
    throw new LaunchError("The access token has expired and there is no refresh token: connect again.", "expired");
  }
  const token = await tokenRequest(session.config.token_endpoint, {
    grant_type: "refresh_token", refresh_token: session.refreshToken, client_id: session.server.clientId,
  }, "token (refresh)");
  const next = {
    ...session, accessToken: token.access_token,
    refreshToken: token.refresh_token || session.refreshToken,
    expiresAt: Date.now() + 1000 * Number(token.expires_in || 3600),
    scope: token.scope || session.scope,
  };
  saveSession(next);
  return next;
}

/** The imaging token of a dual launch, refreshed when about to expire; the EHR's otherwise. */
export async function ensureFreshImaging(session) {
  const imaging = session.imaging;
  if (!imaging || !imaging.accessToken || !needsRefresh(imaging)) return session;
  if (!imaging.refreshToken) {
    if (imaging.expiresAt > Date.now()) return session;
    throw new LaunchError("The imaging access token has expired and there is no refresh token: connect again.", "expired");
  }
  const token = await tokenRequest(imaging.config.token_endpoint, {
    grant_type: "refresh_token", refresh_token: imaging.refreshToken, client_id: imaging.clientId,
  }, "token (imaging refresh)", "The imaging server's token endpoint");
  const grant = dual.imagingGrant(token, imaging.patient);
  const next = { ...session, imaging: { ...imaging, ...grant, refreshToken: grant.refreshToken || imaging.refreshToken } };
  saveSession(next);
  return next;
}

/** Forget the session; revoke its refresh tokens (or access tokens) where the servers offer it. */
export async function disconnect(session) {
  sessionStorage.removeItem(SESSION);
  if (!session) return;
  const imaging = session.imaging || {};
  if (imaging.accessToken && imaging.config) {
    await revoke(imaging.config.revocation_endpoint, imaging.refreshToken || imaging.accessToken, imaging.clientId, "revoke (imaging)");
  }
  const config = session.config || {};
  await revoke(config.revocation_endpoint, session.refreshToken || session.accessToken, session.server.clientId, "revoke");
}

async function revoke(endpoint, token, clientId, step) {
  if (!endpoint || !token) return;
  try {
    const { finish } = await tracedFetch(step, endpoint, {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token, client_id: clientId }),
    });
    finish();
  } catch { /* disconnecting locally is enough */ }
}

export { HttpError, LaunchError };
