// WADO-RS retrieval (PS3.18 10.4) through an ImagingStudy's Endpoint, streamed: each instance is
// parsed and handed over as soon as its multipart part has arrived. A whole study, or one series.
//
// Transfer syntax negotiation (PS3.18 8.7.3.5): the viewer names the syntaxes it can draw, all of
// equal preference: uncompressed little endian and JPEG Baseline (the browser decodes it). The
// server keeps an instance stored in one of them as it is and sends the others (JPEG 2000, JPEG-LS,
// JPEG Lossless, RLE...) transcoded to Explicit VR Little Endian. The trace shows the Accept sent
// and the syntaxes that came back.

import { tracedFetch } from "./trace.js";
import { httpError } from "./http.js";
import { boundaryOf, parts } from "./multipart.js";
import { parseDicom, TS, TS_NAMES } from "./dicom.js";

export const DRAWABLE = [TS.EXPLICIT_LE, TS.JPEG_BASELINE, TS.IMPLICIT_LE];
export const ACCEPT = DRAWABLE.map((ts) => `multipart/related; type="application/dicom"; transfer-syntax=${ts}`).join(", ");

/**
 * Retrieve `{address}/studies/{uid}`; calls onInstance({bytes, parsed, transferSyntax}) per part
 * and onProgress(bytes). Resolves with {instances, bytes} once the closing boundary arrived.
 */
export function retrieveStudy(address, studyUid, token, options = {}) {
  return retrieve(`${address.replace(/\/+$/, "")}/studies/${encodeURIComponent(studyUid)}`, token, options);
}

/** The same for one series: `{address}/studies/{uid}/series/{series uid}`. */
export function retrieveSeries(address, studyUid, seriesUid, token, options = {}) {
  const base = address.replace(/\/+$/, "");
  const url = `${base}/studies/${encodeURIComponent(studyUid)}/series/${encodeURIComponent(seriesUid)}`;
  return retrieve(url, token, options);
}

async function retrieve(url, token, { onInstance, onProgress = () => {}, signal } = {}) {
  const headers = { Accept: ACCEPT };
  if (token) headers.Authorization = `Bearer ${token}`;
  const { response, finish } = await tracedFetch("WADO-RS", url, { headers, signal });
  if (!response.ok) { finish(); throw await httpError("The imaging server (WADO-RS)", response); }
  const boundary = boundaryOf(response.headers.get("Content-Type"));
  let count = 0, received = 0;
  const syntaxes = new Map();
  try {
    for await (const part of parts(response.body, boundary, (n) => { received = n; onProgress(n); })) {
      const type = part.headers["content-type"] || "application/dicom";
      if (!/^application\/dicom/i.test(type)) continue;
      const parsed = parseDicom(part.body);
      const ts = /transfer-syntax\s*=\s*"?([0-9.]+)/i.exec(type);
      const transferSyntax = parsed.transferSyntax || (ts && ts[1]);
      count++;
      syntaxes.set(transferSyntax, (syntaxes.get(transferSyntax) || 0) + 1);
      onInstance({ bytes: part.body, parsed, transferSyntax });
    }
  } finally {
    finish({ bytes: received, detail: `${count} instances${describe(syntaxes)}` });
  }
  return { instances: count, bytes: received };
}

/** "; received as Explicit VR Little Endian ×3, JPEG Baseline (Process 1) ×1" for the trace. */
export function describe(syntaxes) {
  if (!syntaxes.size) return "";
  const names = [...syntaxes].map(([ts, n]) => `${TS_NAMES[ts] || ts} (${ts}) ×${n}`);
  return `; received as ${names.join(", ")}`;
}
