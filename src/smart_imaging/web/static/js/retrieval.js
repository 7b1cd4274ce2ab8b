// Retrieving a study the way the SMART Imaging Access IG asks ("Retrieving images"):
// - with the SMART token the study was found with (`study.token`), not a refreshed one;
// - on 401/403 (an expired Endpoint or token, a refreshed token), "refreshing a retrieval endpoint": search
//   again for the patient and Study Instance UID (`refresh(study)`, with a valid token), then retry
//   once with the returned Endpoint and the token used for that search; not returned, or refused
//   again: stop;
// - a study the server allows only in part (403 "partial_study": it never returns a partial study
//   as a whole) is retrieved series by series, the series its ImagingStudy lists.

import { retrieveSeries, retrieveStudy } from "./wado.js";

export class StudyUnavailable extends Error {
  constructor(message) { super(message); this.name = "StudyUnavailable"; }
}

/** Resolves with {instances, bytes, study, bySeries}; `study` is the one finally retrieved. */
export async function retrieveWithRecovery(study, { refresh = null, onRefresh = () => {}, fetchers = {}, ...options } = {}) {
  try {
    return await retrieveAll(study, options, fetchers);
  } catch (err) {
    if (![401, 403].includes(err.status) || !refresh || err.code === "partial_study") throw err;
  }
  const fresh = await refresh(study);
  if (!fresh || !fresh.wado) {
    throw new StudyUnavailable("A new search did not return this study with a WADO-RS Endpoint: it is no longer available to this session.");
  }
  onRefresh(fresh);
  return retrieveAll(fresh, options, fetchers);
}

async function retrieveAll(study, options, { study: wholeFetch = retrieveStudy, series: seriesFetch = retrieveSeries }) {
  try {
    const whole = await wholeFetch(study.wado.address, study.uid, study.token, options);
    return { ...whole, study, bySeries: false };
  } catch (err) {
    if (err.code !== "partial_study" || !(study.series || []).length) throw err;
  }
  let instances = 0, bytes = 0;
  for (const s of study.series) {
    const base = bytes;
    const onProgress = (n) => (options.onProgress || (() => {}))(base + n);
    const one = await seriesFetch(study.wado.address, study.uid, s.uid, study.token, { ...options, onProgress });
    instances += one.instances;
    bytes += one.bytes;
  }
  return { instances, bytes, study, bySeries: true };
}
