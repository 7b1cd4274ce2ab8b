// FHIR reads for the clinical summary and the ImagingStudy search, with Endpoint resolution
// (contained "#id", included "Endpoint/id", absolute URLs and urn:uuid fullUrls).

import { tracedFetch } from "./trace.js";
import { httpError } from "./http.js";

const FHIR_JSON = "application/fhir+json";
const MAX_PAGES = 10;

export function fhirGet(step, url, token, what) {
  return getJson(step, url, token, what);
}

async function getJson(step, url, token, what) {
  const headers = { Accept: FHIR_JSON };
  if (token) headers.Authorization = `Bearer ${token}`;
  const { response, finish } = await tracedFetch(step, url, { headers });
  if (!response.ok) { finish(); throw await httpError(what, response); }
  const json = await response.json();
  finish();
  return json;
}

export function humanName(patient) {
  const names = patient.name || [];
  const name = names.find((n) => n.use === "official") || names[0];
  if (!name) return "(no name)";
  if (name.text) return name.text;
  return [...(name.prefix || []), ...(name.given || []), name.family].filter(Boolean).join(" ");
}

function isActive(resource) {
  const status = resource.clinicalStatus;
  if (!status) return true;
  return (status.coding || []).some((c) => c.code === "active") || status.text === "active";
}

async function searchAll(step, url, token, what) {
  const resources = [];
  let next = url;
  for (let page = 0; next && page < MAX_PAGES; page++) {
    const bundle = await getJson(step, next, token, what);
    for (const e of bundle.entry || []) {
      if (!e.search || e.search.mode !== "include") resources.push(e.resource);
    }
    next = ((bundle.link || []).find((l) => l.relation === "next") || {}).url;
  }
  return resources;
}

/** Patient, and counts of active conditions, allergies and medications. */
export async function clinicalSummary(fhirBase, patientId, token) {
  const base = fhirBase.replace(/\/+$/, "");
  const pid = encodeURIComponent(patientId);
  const [patient, conditions, allergies, medications] = await Promise.all([
    getJson("Patient", `${base}/Patient/${pid}`, token, "The EHR (Patient)"),
    searchAll("Condition", `${base}/Condition?patient=${pid}`, token, "The EHR (Condition)"),
    searchAll("AllergyIntolerance", `${base}/AllergyIntolerance?patient=${pid}`, token, "The EHR (AllergyIntolerance)"),
    searchAll("MedicationRequest", `${base}/MedicationRequest?patient=${pid}`, token, "The EHR (MedicationRequest)"),
  ]);
  return {
    patient,
    name: humanName(patient),
    birthDate: patient.birthDate || "",
    gender: patient.gender || "",
    conditions: conditions.filter(isActive),
    allergies: allergies.filter(isActive),
    medications: medications.filter((m) => !m.status || m.status === "active"),
  };
}

/**
 * The patient's studies, each with its resolved WADO-RS Endpoints and the token that found them
 * (`study.token`): retrievals present that same token (IG "Retrieving images").
 */
export async function searchStudies(imagingBase, patientId, token, identifier = null) {
  let url = `${imagingBase}/ImagingStudy?patient=${encodeURIComponent(patientId)}&_include=ImagingStudy:endpoint`;
  if (identifier) url += `&identifier=${encodeURIComponent(identifier)}`;
  const studies = [];
  for (let page = 0; url && page < MAX_PAGES; page++) {
    const bundle = await getJson("ImagingStudy", url, token, "The imaging server (ImagingStudy search)");
    for (const entry of bundle.entry || []) {
      const study = entry.resource;
      if (!study || study.resourceType !== "ImagingStudy") continue;
      if (entry.search && entry.search.mode === "include") continue;
      studies.push({ ...describeStudy(study, resolveEndpoints(study, bundle, entry.fullUrl)), token });
    }
    url = ((bundle.link || []).find((l) => l.relation === "next") || {}).url;
  }
  return studies;
}

/** One study found again by its Study Instance UID (a fresh Endpoint for `token`), or null. */
export async function findStudy(imagingBase, patientId, studyUid, token) {
  const found = await searchStudies(imagingBase, patientId, token, `urn:oid:${studyUid}`);
  return found.find((s) => s.uid === studyUid) || null;
}

/** Resolve every `study.endpoint` reference per FHIR R4 2.3.0.4 (references in bundles). */
export function resolveEndpoints(study, bundle, fullUrl) {
  return (study.endpoint || []).map((ref) => resolveReference(ref.reference || "", study, bundle, fullUrl))
    .filter((r) => r && r.resourceType === "Endpoint");
}

export function resolveReference(reference, resource, bundle, fullUrl) {
  if (!reference) return null;
  if (reference.startsWith("#")) {
    return (resource.contained || []).find((c) => c.id === reference.slice(1)) || null;
  }
  const entries = (bundle && bundle.entry) || [];
  const byFullUrl = (url) => entries.find((e) => e.fullUrl === url);
  if (/^(urn:uuid:|urn:oid:)/.test(reference) || /^https?:/.test(reference)) {
    const hit = byFullUrl(reference);
    if (hit) return hit.resource;
    const m = reference.match(/([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/);
    return m ? entries.map((e) => e.resource).find((r) => r && r.resourceType === m[1] && r.id === m[2]) || null : null;
  }
  const m = reference.match(/^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})/);
  if (!m) return null;
  // Relative reference: resolve against the referring entry's base (FHIR R4 Bundle 2.36.4.1).
  if (fullUrl && /^https?:/.test(fullUrl)) {
    const base = fullUrl.replace(/[A-Za-z]+\/[^/]+(\/_history\/.*)?$/, "");
    const hit = byFullUrl(base + reference);
    if (hit) return hit.resource;
  }
  return entries.map((e) => e.resource).find((r) => r && r.resourceType === m[1] && r.id === m[2]) || null;
}

export function isWadoRs(endpoint) {
  const type = endpoint.connectionType || {};
  const codes = [type.code, ...((type.coding || []).map((c) => c.code))];
  return codes.includes("dicom-wado-rs") && (!endpoint.status || endpoint.status === "active");
}

function studyUid(study) {
  const id = (study.identifier || []).find((i) => i.system === "urn:dicom:uid" || /^urn:oid:/.test(i.value || ""));
  return id ? id.value.replace(/^urn:oid:/, "") : study.id;
}

export function describeStudy(study, endpoints) {
  const modalities = (study.modality || []).map((m) => m.code)
    .concat((study.series || []).map((s) => s.modality && s.modality.code)).filter(Boolean);
  const series = (study.series || []).map((s) => ({
    uid: s.uid, number: s.number, modality: s.modality && s.modality.code, description: s.description || "",
    count: s.numberOfInstances ?? (s.instance || []).length,
  }));
  return {
    resource: study,
    uid: studyUid(study),
    date: study.started || "",
    modality: [...new Set(modalities)].join(", "),
    description: study.description || (study.procedureCode || []).map((p) => p.text).find(Boolean) || "",
    seriesCount: study.numberOfSeries ?? series.length,
    instanceCount: study.numberOfInstances ?? series.reduce((n, s) => n + (s.count || 0), 0),
    series,
    endpoints,
    wado: endpoints.find(isWadoRs) || null,
  };
}
