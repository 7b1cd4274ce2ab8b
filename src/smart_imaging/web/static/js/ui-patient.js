// The patient screen: clinical summary from the EHR, imaging studies from the imaging server
// (with a countdown and retry on 503 + Retry-After).

import { h, replace, formatDate } from "./dom.js";
import { clinicalSummary, searchStudies } from "./fhir.js";

const DEFAULT_RETRY_S = 5;
const MAX_RETRIES = 20;

export function renderPatient(section, { session, getToken, getImagingToken = getToken, onOpenStudy, onError }) {
  const clinical = h("section", { class: "panel clinical", "aria-labelledby": "clinical-title" },
    h("h2", { id: "clinical-title" }, "Patient"), h("p", { class: "muted" }, "Loading…"));
  const imaging = h("section", { class: "panel imaging", "aria-labelledby": "imaging-title" },
    h("h2", { id: "imaging-title" }, "Imaging studies"), h("p", { class: "muted" }, "Loading…"));
  replace(section, h("h2", { id: "patient-title", class: "visually-hidden" }, "Patient and studies"),
    h("div", { class: "panels" }, clinical, imaging));
  let studies = [];
  let timer = null;
  let stopped = false;

  loadClinical();
  loadStudies(0);

  async function loadClinical() {
    try {
      const s = await clinicalSummary(session.server.iss, session.patient, await getToken());
      replace(clinical,
        h("h2", { id: "clinical-title" }, "Patient"),
        h("p", { class: "patient-name", id: "patient-name" }, s.name),
        h("dl", { class: "facts" },
          h("dt", {}, "Birth date"), h("dd", { id: "birth-date" }, formatDate(s.birthDate) || "unknown"),
          h("dt", {}, "Sex"), h("dd", {}, s.gender || "unknown"),
          h("dt", {}, "Patient id"), h("dd", {}, h("code", {}, session.patient))),
        h("ul", { class: "counts" },
          count("conditions", "Active conditions", s.conditions, (c) => c.code && (c.code.text || (c.code.coding || [])[0]?.display)),
          count("allergies", "Allergies", s.allergies, (c) => c.code && (c.code.text || (c.code.coding || [])[0]?.display)),
          count("medications", "Active medications", s.medications,
            (m) => (m.medicationCodeableConcept && (m.medicationCodeableConcept.text || (m.medicationCodeableConcept.coding || [])[0]?.display)) || "")));
    } catch (err) {
      replace(clinical, h("h2", { id: "clinical-title" }, "Patient"), h("p", { class: "error" }, err.message));
      onError(err, "clinical");
    }
  }

  function count(key, label, items, name) {
    const names = items.map(name).filter(Boolean);
    return h("li", { class: "count", id: `count-${key}` },
      h("span", { class: "count-n" }, String(items.length)), h("span", {}, label),
      names.length ? h("small", { class: "muted" }, names.join(", ")) : null);
  }

  async function loadStudies(attempt) {
    if (!session.imaging) {
      replace(imaging, h("h2", { id: "imaging-title" }, "Imaging studies"),
        h("p", { class: "error" }, "This EHR announces no imaging endpoint (no associated_endpoints entry with capabilities smart-imaging-access and http://fhir.org/argonaut/smart-imaging/capabilities/app-launch). Set an imaging FHIR base override for this server."));
      return;
    }
    try {
      const patient = session.imaging.patient || session.patient; // the same in a dual launch (checked)
      studies = await searchStudies(session.imaging.url, patient, await getImagingToken());
      if (stopped) return;
      renderStudies();
    } catch (err) {
      if (stopped) return;
      if (err.status === 503 && attempt < MAX_RETRIES) {
        countdown(err.retryAfter ?? DEFAULT_RETRY_S, err.detail, () => loadStudies(attempt + 1));
        return;
      }
      replace(imaging, h("h2", { id: "imaging-title" }, "Imaging studies"),
        h("p", { class: "error", id: "imaging-error" }, explain(err)),
        h("button", { type: "button", onclick: () => loadStudies(0) }, "Try again"));
    }
  }

  function countdown(seconds, detail, retry) {
    let left = Math.max(1, Math.ceil(seconds));
    const number = h("span", { id: "retry-seconds" }, String(left));
    replace(imaging, h("h2", { id: "imaging-title" }, "Imaging studies"),
      h("div", { class: "countdown", role: "status", id: "retry-countdown" },
        h("p", {}, "The imaging server is preparing this patient's images (503). Retrying in ", number, " s."),
        detail ? h("p", { class: "muted" }, detail) : null,
        h("button", { type: "button", onclick: () => { clearInterval(timer); retry(); } }, "Retry now")));
    clearInterval(timer);
    timer = setInterval(() => {
      left -= 1;
      number.textContent = String(Math.max(0, left));
      if (left <= 0) { clearInterval(timer); if (!stopped) retry(); }
    }, 1000);
  }

  function renderStudies() {
    const rows = studies.map((s, i) => h("li", {},
      h("button", { type: "button", class: "study", "data-study": s.uid, onclick: () => onOpenStudy(s),
        "aria-label": `${i < 9 ? `${i + 1}: ` : ""}${s.description || "Study"}, ${s.modality}, ${formatDate(s.date)}, ${s.seriesCount} series, ${s.instanceCount} images` },
        h("span", { class: "key" }, i < 9 ? String(i + 1) : ""),
        h("span", { class: "study-date" }, formatDate(s.date)),
        h("span", { class: "study-modality" }, s.modality),
        h("span", { class: "study-desc" }, s.description || "(no description)"),
        h("span", { class: "study-counts" }, `${s.seriesCount} series · ${s.instanceCount} images`),
        s.wado ? null : h("span", { class: "error" }, "no WADO-RS endpoint"))));
    replace(imaging, h("h2", { id: "imaging-title" }, `Imaging studies (${studies.length})`),
      h("p", { class: "muted" }, "From ", h("code", {}, session.imaging.url), ` (${session.imaging.from}${session.imaging.accessToken ? ", dual launch: the imaging server's own token" : ""}). Press 1–9 to open a study.`),
      studies.length ? h("ol", { class: "studies" }, rows) : h("p", {}, "No imaging studies for this patient."));
  }

  return {
    openNumber(n) { if (studies[n - 1]) onOpenStudy(studies[n - 1]); },
    stop() { stopped = true; clearInterval(timer); },
    focusStudies() { const b = section.querySelector("button.study"); if (b) b.focus(); },
  };
}

export function explain(err) {
  if (err.status === 401) {
    return `The imaging server refused the access token (401${err.detail ? `: ${err.detail}` : ""}). ` +
      "It may not trust tokens from this EHR, or the token has expired or was revoked.";
  }
  if (err.status === 403) return `The imaging server denied access (403${err.detail ? `: ${err.detail}` : ""}).`;
  return err.message;
}
