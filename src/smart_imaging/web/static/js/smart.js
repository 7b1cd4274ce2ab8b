// SMART App Launch (standalone, public client): discovery, PKCE S256, state, token exchange,
// refresh before expiry, disconnect. The session lives in sessionStorage (this tab only).

import { tracedFetch, note, redactUrl, redactJson } from "./trace.js";
import { httpError, HttpError } from "./http.js";

const PENDING = "smart-imaging-viewer.pending";
const SESSION = "smart-imaging-viewer.session";
const REFRESH_MARGIN_S = 60;
export const IMAGING_CAPABILITY = "smart-imaging-access";

export class LaunchError extends Error {
  constructor(message, code = "launch_error") { super(message); this.name = "LaunchError"; this.code = code; }
}

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
export async function discover(iss) {
  const url = `${iss.replace(/\/+$/, "")}/.well-known/smart-configuration`;
  const { response, finish } = await tracedFetch("discovery", url, { headers: { Accept: "application/json" } });
  if (response.ok) {
    const config = await response.json();
    finish();
    if (!config.authorization_endpoint || !config.token_endpoint) {
      throw new LaunchError(`${url} names no authorization_endpoint or token_endpoint`);
    }
    return config;
  }
  finish();
  const meta = await tracedFetch("discovery", `${iss}/metadata`, { headers: { Accept: "application/fhir+json" } });
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

/** The imaging FHIR base: the server's override when set, else associated_endpoints. */
export function imagingBase(server, config) {
  if (server.imagingOverride) return { url: server.imagingOverride, from: "override" };
  const found = (config.associated_endpoints || [])
    .find((e) => (e.capabilities || []).includes(IMAGING_CAPABILITY));
  return found ? { url: found.url.replace(/\/+$/, ""), from: "associated_endpoints" } : null;
}

/** Start the launch: remember state + verifier, send the browser to the authorize endpoint. */
export async function beginLaunch(server, { launch = null, navigate = (u) => location.assign(u) } = {}) {
  const config = await discover(server.iss);
  if ((config.code_challenge_methods_supported || ["S256"]).indexOf("S256") < 0) {
    throw new LaunchError("the EHR does not support PKCE S256");
  }
  const imaging = imagingBase(server, config);
  const verifier = randomString(48);
  const state = randomString(24);
  const params = new URLSearchParams({
    response_type: "code", client_id: server.clientId, redirect_uri: redirectUri(),
    scope: server.scope, state, aud: server.iss,
    code_challenge: await s256(verifier), code_challenge_method: "S256",
  });
  if (launch) params.set("launch", launch);
  sessionStorage.setItem(PENDING, JSON.stringify({
    state, verifier, server, config, imaging, startedAt: Date.now(),
  }));
  const url = `${config.authorization_endpoint}?${params}`;
  note("authorize", { method: "GET", url: redactUrl(url), status: "redirect",
    detail: "browser sent to the EHR's authorization endpoint" });
  navigate(url);
}

export function hasCallback(params) {
  return params.has("state") && (params.has("code") || params.has("error"));
}

/** Finish the launch on the redirect back: check state, exchange the code. */
export async function completeLaunch(params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  note("authorize", { method: "GET", url: redactUrl(location.href), status: "callback",
    detail: params.has("error") ? `error=${params.get("error")}` : "code received" });
  if (!pending) throw new LaunchError("This page got an authorization response it did not ask for (no launch in progress in this tab).", "no_pending_launch");
  if (params.get("state") !== pending.state) {
    sessionStorage.removeItem(PENDING);
    throw new LaunchError("The authorization response carries the wrong state: refused (possible CSRF).", "state_mismatch");
  }
  sessionStorage.removeItem(PENDING);
  if (params.has("error")) {
    const description = params.get("error_description");
    const text = params.get("error") === "access_denied"
      ? "Authorization was denied at the EHR: the app got no access."
      : `The EHR refused the authorization: ${params.get("error")}`;
    throw new LaunchError(description ? `${text} (${description})` : text, params.get("error"));
  }
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
  saveSession(session);
  return session;
}

async function tokenRequest(endpoint, fields, step) {
  const body = new URLSearchParams(fields);
  const { response, entry, finish } = await tracedFetch(step, endpoint, {
    method: "POST", body, headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
  });
  if (!response.ok) { finish(); throw await httpError("The EHR's token endpoint", response); }
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

/** Forget the session; revoke the refresh token (or access token) when the EHR offers it. */
export async function disconnect(session) {
  sessionStorage.removeItem(SESSION);
  const endpoint = session && session.config && session.config.revocation_endpoint;
  if (!endpoint) return;
  const token = session.refreshToken || session.accessToken;
  try {
    const { finish } = await tracedFetch("revoke", endpoint, {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token, client_id: session.server.clientId }),
    });
    finish();
  } catch { /* disconnecting locally is enough */ }
}

export { HttpError };
