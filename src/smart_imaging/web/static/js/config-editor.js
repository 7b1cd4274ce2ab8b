// The dynamic-tenant config editor: the server validates; we show problems or the /dyn/ URL.

import { h, replace } from "./dom.js";
import { addServer, DEFAULT_CLIENT_ID, DEFAULT_SCOPE } from "./settings.js";

const DRAFT = "smart-imaging-viewer.config-draft";
const text = document.getElementById("config-text");
const result = document.getElementById("result");

function example() {
  return JSON.stringify({
    "//": "A tenant in front of a local Orthanc. Keys starting with // are comments.",
    authorization: {
      type: "mock",
      "//": "mock: no token checks, fixed patient. With a real EHR use smart-on-fhir + a backend client.",
      patient: { resourceType: "Patient", id: "marcus-okafor",
        identifier: [{ type: { coding: [{ code: "MR" }] }, value: "MRN-1002" }] },
    },
    images: {
      type: "dicom-web",
      endpoint: "http://localhost:8042/dicom-web",
      lookup: "studies-by-mrn",
      authentication: { type: "http-basic", username: "orthanc", password: "orthanc" },
    },
  }, null, 2);
}

text.value = localStorage.getItem(DRAFT) || example();
text.addEventListener("input", () => localStorage.setItem(DRAFT, text.value));

document.getElementById("format").addEventListener("click", () => {
  try { text.value = JSON.stringify(JSON.parse(text.value), null, 2); localStorage.setItem(DRAFT, text.value); } catch (err) { show({ valid: false, problems: [{ field: "(json)", message: err.message }] }); }
});
document.getElementById("reset-example").addEventListener("click", () => {
  text.value = example(); localStorage.removeItem(DRAFT); replace(result); text.focus();
});
document.getElementById("editor-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  replace(result, h("p", { class: "muted" }, "Validating…"));
  try {
    const response = await fetch("/api/validate-config", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: text.value,
    });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    show(await response.json());
  } catch (err) {
    show({ valid: false, problems: [{ field: "(server)", message: `validation failed: ${err.message}` }] });
  }
});

function show(answer) {
  requestAnimationFrame(() => result.scrollIntoView({ block: "nearest" }));
  if (!answer.valid) {
    replace(result, h("div", { class: "result invalid", role: "alert", id: "validation" },
      h("h3", {}, `Not valid: ${answer.problems.length} problem${answer.problems.length === 1 ? "" : "s"}`),
      h("ul", { id: "problems" }, answer.problems.map((p) => h("li", {}, h("code", {}, p.field), " ", p.message)))));
    return;
  }
  const url = h("output", { id: "fhir-base" }, answer.fhirBase);
  const label = h("input", { id: "server-label", value: "Dynamic tenant" });
  replace(result, h("div", { class: "result valid", id: "validation", role: "status" },
    h("h3", { class: "ok" }, "Valid config"),
    answer.dynamicTenantsEnabled === false ? h("p", { class: "warn" }, "Note: this server has dynamic tenants turned off, so the URL will not work here.") : null,
    h("p", {}, "FHIR base URL of this tenant:"), url,
    h("div", { class: "buttons" },
      h("button", { type: "button", id: "copy", onclick: async (e) => {
        try { await navigator.clipboard.writeText(answer.fhirBase); e.target.textContent = "Copied"; }
        catch { selectText(url); e.target.textContent = "Selected: press Ctrl+C"; }
      } }, "Copy URL")),
    h("h3", {}, "Use it in the viewer"),
    h("p", { class: "muted" }, "Adds a server entry that launches at the demo EHR and sends its token to this tenant."),
    h("div", { class: "field" }, h("label", { for: "server-label" }, "Label"), label),
    h("div", { class: "buttons" },
      h("button", { type: "button", id: "add-server", class: "primary", onclick: () => {
        addServer({ label: label.value || "Dynamic tenant", iss: `${location.origin}/ehr/fhir`, clientId: DEFAULT_CLIENT_ID,
          scope: DEFAULT_SCOPE, imagingOverride: answer.fhirBase, dualLaunch: isIndependent(text.value) });
        location.assign("/");
      } }, "Add to the viewer's servers"))));
}

/** A tenant with its own authorization server is launched a second time (dual launch). */
function isIndependent(json) {
  try { return JSON.parse(json).authorization.type === "smart-on-fhir-independent"; } catch { return false; }
}

function selectText(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
}
