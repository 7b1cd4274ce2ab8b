// WADO-RS retrieval (PS3.18 10.4) through an ImagingStudy's Endpoint, streamed: each instance is
// parsed and handed over as soon as its multipart part has arrived. A whole study, or one series.

import { tracedFetch } from "./trace.js";
import { httpError } from "./http.js";
import { boundaryOf, parts } from "./multipart.js";
import { parseDicom } from "./dicom.js";

export const ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

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
  try {
    for await (const part of parts(response.body, boundary, (n) => { received = n; onProgress(n); })) {
      const type = part.headers["content-type"] || "application/dicom";
      if (!/^application\/dicom/i.test(type)) continue;
      const parsed = parseDicom(part.body);
      const ts = /transfer-syntax\s*=\s*"?([0-9.]+)/i.exec(type);
      count++;
      onInstance({ bytes: part.body, parsed, transferSyntax: parsed.transferSyntax || (ts && ts[1]) });
    }
  } finally {
    finish({ bytes: received, detail: `${count} instances` });
  }
  return { instances: count, bytes: received };
}
