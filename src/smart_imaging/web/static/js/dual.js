// Dual launch (the reference server's "smart-imaging-access-dual-launch"): after the EHR launch,
// a second SMART launch at the imaging server's own authorization server, found at
// {imaging FHIR base}/.well-known/smart-configuration, with the EHR's id_token as login_hint,
// PKCE S256 and its own state. EHR calls carry the EHR token, imaging calls the imaging token.
// Pure functions only; smart.js runs the flow.

import { LaunchError } from "./http.js";

export const DUAL_CAPABILITY = "smart-imaging-access-dual-launch";

/** The associated_endpoints entry of the EHR's smart-configuration carrying every one of `capabilities`. */
export function associatedEndpoint(config, ...capabilities) {
  const found = ((config && config.associated_endpoints) || [])
    .find((e) => e && typeof e.url === "string" && capabilities.every((c) => (e.capabilities || []).includes(c)));
  return found ? found.url.replace(/\/+$/, "") : null;
}

/** A dual launch needs an imaging server to launch at and the EHR's id_token (scope openid). */
export function checkDualServer(server, imaging) {
  if (!imaging) {
    throw new LaunchError(`The EHR announces no imaging server for dual launch (no associated_endpoints entry with capability ${DUAL_CAPABILITY}): set an imaging FHIR base override.`, "no_imaging");
  }
  if (!/(^|\s)openid(\s|$)/.test(server.scope || "")) {
    throw new LaunchError("A dual launch needs openid in the EHR scope: the EHR's id_token is the imaging leg's login_hint.", "no_openid");
  }
}

/** Check the imaging server's smart-configuration before sending the browser there. */
export function checkImagingConfig(config, url) {
  if (!config || !config.authorization_endpoint || !config.token_endpoint) {
    throw new LaunchError(`${url} names no authorization_endpoint or token_endpoint: the imaging server has no authorization server of its own (not a dual-launch server)`);
  }
  const methods = config.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes("S256")) {
    throw new LaunchError("the imaging server's authorization server does not support PKCE S256");
  }
  return config;
}

/** The authorize URL of the imaging leg: SMART App Launch 2 with login_hint = the EHR's id_token. */
export function imagingAuthorizeUrl(config, { clientId, redirectUri, scope, state, aud, idToken, challenge }) {
  if (!idToken) {
    throw new LaunchError("The EHR's token response has no id_token: a dual launch needs openid in the EHR scope.", "no_id_token");
  }
  const params = new URLSearchParams({
    response_type: "code", client_id: clientId, redirect_uri: redirectUri, scope, state, aud,
    login_hint: idToken, code_challenge: challenge, code_challenge_method: "S256",
  });
  const endpoint = config.authorization_endpoint;
  return `${endpoint}${endpoint.includes("?") ? "&" : "?"}${params}`;
}

/**
 * The imaging part of the session from the imaging token response. The imaging token must be for
 * the EHR's patient: the viewer never shows one patient's record with another patient's images.
 */
export function imagingGrant(token, ehrPatient, now = Date.now()) {
  if (!token || !token.access_token) throw new LaunchError("The imaging server's token response has no access_token");
  if (token.patient && ehrPatient && token.patient !== ehrPatient) {
    throw new LaunchError(`The imaging server's token is for patient ${token.patient}, the EHR's for ${ehrPatient}: refused.`, "patient_mismatch");
  }
  return {
    accessToken: token.access_token,
    refreshToken: token.refresh_token || null,
    expiresAt: now + 1000 * Number(token.expires_in || 3600),
    scope: token.scope || "",
    patient: token.patient || ehrPatient,
  };
}

/** What the trace and messages call each leg's exchanges. */
export function legName(leg) {
  return leg === "imaging" ? "the imaging server's authorization server" : "the EHR";
}

export function stepName(step, leg) {
  return leg === "imaging" ? `${step} (imaging)` : step;
}
