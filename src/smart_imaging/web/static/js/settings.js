// The list of servers the viewer can connect to, kept in localStorage.

const KEY = "smart-imaging-viewer.servers";
export const DEFAULT_SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs";
export const DEFAULT_CLIENT_ID = "smart-imaging-viewer";
// The imaging leg of a dual launch asks the imaging server's own authorization server for
// imaging access only (the IG's scope) and a refresh token.
export const DEFAULT_IMAGING_SCOPE = "launch/patient patient/ImagingStudy.rs offline_access";

export function defaultServers() {
  const demo = { iss: `${location.origin}/ehr/fhir`, clientId: DEFAULT_CLIENT_ID, scope: DEFAULT_SCOPE, imagingOverride: "" };
  return [
    { ...demo, id: "demo", label: "Demo EHR (this server)", dualLaunch: false },
    // The demo's tenant "dual" has its own authorization server: the EHR announces it in
    // associated_endpoints with capability smart-imaging-access-dual-launch.
    { ...demo, id: "demo-dual", label: "Demo EHR + dual-launch imaging (tenant dual)", dualLaunch: true },
  ].map(normalize);
}

export function loadServers() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "null");
    if (Array.isArray(list) && list.length) return list.map(normalize);
  } catch { /* fall through to defaults */ }
  return defaultServers();
}

export function saveServers(list) {
  localStorage.setItem(KEY, JSON.stringify(list.map(normalize)));
}

export function resetServers() {
  localStorage.removeItem(KEY);
  return defaultServers();
}

export function normalize(server) {
  return {
    id: String(server.id || newId()),
    label: String(server.label || server.iss || "Server").trim(),
    iss: String(server.iss || "").trim().replace(/\/+$/, ""),
    clientId: String(server.clientId || DEFAULT_CLIENT_ID).trim(),
    scope: String(server.scope || DEFAULT_SCOPE).trim().replace(/\s+/g, " "),
    imagingOverride: String(server.imagingOverride || "").trim().replace(/\/+$/, ""),
    dualLaunch: server.dualLaunch === true || server.dualLaunch === "on",
    imagingClientId: String(server.imagingClientId || "").trim(),
    imagingScope: String(server.imagingScope || "").trim().replace(/\s+/g, " "),
  };
}

/** The imaging leg's client id and scope (dual launch): the server's own, else the defaults. */
export function imagingClient(server) {
  return {
    clientId: server.imagingClientId || server.clientId || DEFAULT_CLIENT_ID,
    scope: server.imagingScope || DEFAULT_IMAGING_SCOPE,
  };
}

/** Problems with a server entry, as {field, message}. */
export function validateServer(server) {
  const problems = [];
  if (!server.label) problems.push({ field: "label", message: "give the server a name" });
  for (const field of ["iss", "imagingOverride"]) {
    const value = server[field];
    if (!value && field === "imagingOverride") continue;
    try {
      const u = new URL(value);
      if (!/^https?:$/.test(u.protocol)) throw new Error();
    } catch {
      problems.push({ field, message: "must be an http(s) URL" });
    }
  }
  if (!server.clientId) problems.push({ field: "clientId", message: "a client id is required" });
  if (!server.scope) problems.push({ field: "scope", message: "a scope is required" });
  if (server.dualLaunch && !/(^|\s)openid(\s|$)/.test(server.scope)) {
    problems.push({ field: "scope", message: "a dual launch needs openid (the EHR's id_token is the imaging leg's login_hint)" });
  }
  return problems;
}

export function addServer(server) {
  const list = loadServers();
  const entry = normalize({ ...server, id: newId() });
  list.push(entry);
  saveServers(list);
  return entry;
}

export function newId() {
  return Math.random().toString(36).slice(2, 10);
}
