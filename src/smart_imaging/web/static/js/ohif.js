// "Open in OHIF": the study handed to an OHIF v3 deployment (docs/notes/ohif.md). OHIF opens
// `{ohif}/viewer?StudyInstanceUIDs=...`; its app-config.js (the one the note documents) takes the
// Endpoint address from `endpoint` as wadoRoot and qidoRoot after checking its origin, and OHIF
// itself reads `token` and sends it as `Authorization: Bearer` on every DICOMweb request.
// The OHIF URL comes from the viewer's own setting, else from the server (SMART_IMAGING_OHIF_URL):
// the token only ever goes to that configured origin (IG: no token to an unrelated party).

const KEY = "smart-imaging-viewer.ohif-url";
let fromServer = null;

/** The OHIF URL the server offers (`/api/viewer-config`), fetched once; "" when none. */
export function serverOhifUrl() {
  if (!fromServer) {
    fromServer = fetch("/api/viewer-config", { headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : {}))
      .then((config) => String(config.ohifUrl || ""))
      .catch(() => "");
  }
  return fromServer;
}

export function savedOhifUrl() {
  try { return localStorage.getItem(KEY) || ""; } catch { return ""; }
}

/** Save the viewer's own OHIF URL ("" clears it); returns a problem message or null. */
export function saveOhifUrl(value) {
  const url = String(value || "").trim();
  if (url && !validOhifUrl(url)) return "must be an http(s) URL";
  try { url ? localStorage.setItem(KEY, url) : localStorage.removeItem(KEY); } catch { /* private mode */ }
  return null;
}

/** The OHIF URL to use: the viewer's setting, else the server's; "" when neither is set. */
export async function ohifUrl() {
  return savedOhifUrl() || (await serverOhifUrl());
}

export function validOhifUrl(value) {
  try { return /^https?:$/.test(new URL(value).protocol); } catch { return false; }
}

/** OHIF's viewer route for `study`, with its Endpoint address and (if any) its token. */
export function ohifLink(base, study) {
  if (!validOhifUrl(base)) throw new Error("the OHIF URL must be an http(s) URL");
  const root = new URL(base);
  const url = new URL(`${root.pathname.replace(/\/+$/, "")}/viewer`, root);
  url.searchParams.set("StudyInstanceUIDs", study.uid);
  url.searchParams.set("endpoint", study.wado.address.replace(/\/+$/, ""));
  if (study.token) url.searchParams.set("token", study.token);
  return url.toString();
}
