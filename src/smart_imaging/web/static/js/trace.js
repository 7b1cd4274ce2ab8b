// Protocol trace: every HTTP exchange of the flow, kept in sessionStorage so the authorize
// redirect does not lose it. Secrets (tokens, codes, verifiers) are redacted before storing.

const KEY = "smart-imaging-viewer.trace";
const MAX_ENTRIES = 300;
// login_hint and id_token_hint carry an id_token in a dual launch.
const SECRET_PARAMS = ["code", "code_verifier", "access_token", "refresh_token", "id_token",
  "token", "client_secret", "client_assertion", "login_hint", "id_token_hint"];
const listeners = new Set();
let entries = load();
let nextId = entries.reduce((m, e) => Math.max(m, e.id), 0) + 1;

function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || "[]"); } catch { return []; }
}

function save() {
  entries = entries.slice(-MAX_ENTRIES);
  try { sessionStorage.setItem(KEY, JSON.stringify(entries)); } catch { /* quota: keep in memory */ }
  for (const fn of listeners) fn(entries);
}

export function redactSecret(value) {
  const text = String(value);
  return text.length <= 8 ? "[redacted]" : `${text.slice(0, 4)}…[redacted ${text.length} chars]`;
}

export function redactHeader(name, value) {
  const lower = name.toLowerCase();
  if (lower === "authorization") {
    const [scheme, ...rest] = String(value).split(" ");
    return rest.length ? `${scheme} ${redactSecret(rest.join(" "))}` : redactSecret(value);
  }
  if (lower === "cookie" || lower === "set-cookie") return "[redacted]";
  return String(value);
}

/** A URL (or form body) with secret query parameters redacted; WADO binding segments shortened. */
export function redactUrl(url) {
  let text = String(url);
  try {
    const u = new URL(text, location.href);
    for (const name of SECRET_PARAMS) {
      if (u.searchParams.has(name)) u.searchParams.set(name, "[redacted]");
    }
    text = u.toString().replaceAll("%5Bredacted%5D", "[redacted]");
  } catch { /* not a URL */ }
  return text;
}

export function redactForm(params) {
  const out = {};
  for (const [k, v] of new URLSearchParams(params)) {
    out[k] = SECRET_PARAMS.includes(k) ? redactSecret(v) : v;
  }
  return out;
}

/** Redact token fields of a JSON token response. */
export function redactJson(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj || {})) {
    out[k] = SECRET_PARAMS.includes(k) && v ? redactSecret(v) : v;
  }
  return out;
}

export function onChange(fn) { listeners.add(fn); fn(entries); return () => listeners.delete(fn); }
export function all() { return entries.slice(); }
export function clear() { entries = []; save(); }

/** Record something that is not a fetch (the authorize redirect, the callback). */
export function note(step, fields) {
  const entry = { id: nextId++, step, at: new Date().toISOString(), ...fields };
  entries.push(entry);
  save();
  return entry;
}

function headerList(headers) {
  const list = [];
  new Headers(headers || {}).forEach((value, name) => list.push([name, redactHeader(name, value)]));
  return list;
}

/**
 * fetch() that records method, URL, status, timing and headers. Returns the Response plus a
 * `finish(bytes)` to call once a streamed body has been read, so the timing covers the body.
 */
export async function tracedFetch(step, url, init = {}) {
  const started = performance.now();
  const entry = note(step, {
    method: (init.method || "GET").toUpperCase(), url: redactUrl(url),
    requestHeaders: headerList(init.headers),
    requestBody: init.body instanceof URLSearchParams ? redactForm(init.body) : undefined,
    status: "pending",
  });
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    update(entry, { status: "network error", error: String(err.message || err),
      ms: Math.round(performance.now() - started) });
    throw new NetworkError(url, err);
  }
  update(entry, {
    status: response.status, statusText: response.statusText,
    headersMs: Math.round(performance.now() - started),
    responseHeaders: headerList(response.headers),
  });
  return {
    response,
    entry,
    finish(extra = {}) { update(entry, { ms: Math.round(performance.now() - started), ...extra }); },
  };
}

export function update(entry, fields) {
  Object.assign(entry, fields);
  const stored = entries.find((e) => e.id === entry.id);
  if (stored && stored !== entry) Object.assign(stored, fields);
  save();
}

export class NetworkError extends Error {
  constructor(url, cause) {
    let origin = String(url);
    try { origin = new URL(url).origin; } catch { /* keep */ }
    super(`Could not reach ${origin} (${cause && cause.message ? cause.message : cause}). ` +
      "The server may be down, or it does not allow cross-origin requests (CORS).");
    this.name = "NetworkError";
  }
}
