// The connect screen: the server list (kept in localStorage), an editor for entries, Connect.

import { h, replace } from "./dom.js";
import * as settings from "./settings.js";
import { saveOhifUrl, savedOhifUrl, serverOhifUrl } from "./ohif.js";

const FIELDS = [
  ["label", "Label", "text", "A name for this server"],
  ["iss", "FHIR base URL (iss)", "url", "The EHR's FHIR base; its .well-known/smart-configuration is read"],
  ["clientId", "Client id", "text", "The app's client id at that EHR (public client, PKCE)"],
  ["scope", "Scope", "text", "Space-separated SMART scopes; include launch/patient"],
  ["imagingOverride", "Imaging FHIR base (optional override)", "url",
    "Used instead of the EHR's associated_endpoints (capability smart-imaging-access, or smart-imaging-access-dual-launch)"],
  ["dualLaunch", "Dual launch", "checkbox",
    "The imaging server has its own authorization server: after the EHR launch, launch again there with the EHR's id_token as login_hint (needs openid in the scope)"],
  ["imagingClientId", "Client id at the imaging server (dual launch, optional)", "text", "Default: the same client id"],
  ["imagingScope", "Scope at the imaging server (dual launch, optional)", "text", `Default: ${settings.DEFAULT_IMAGING_SCOPE}`],
];
const OPTIONAL = new Set(["imagingOverride", "dualLaunch", "imagingClientId", "imagingScope"]);

export function renderConnect(section, { onConnect }) {
  let servers = settings.loadServers();
  let editing = null; // server id or "new"

  function render() {
    const list = h("ul", { class: "server-list" }, servers.map((s) => h("li", { class: "server" },
      h("div", { class: "server-text" },
        h("strong", {}, s.label),
        h("span", { class: "muted" }, s.iss),
        s.imagingOverride ? h("span", { class: "muted" }, `imaging: ${s.imagingOverride}`) : null,
        s.dualLaunch ? h("span", { class: "badge" }, "dual launch") : null),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "primary", "data-server": s.id,
          "aria-label": `Connect to ${s.label}`, onclick: () => onConnect(s) },
          "Connect"),
        h("button", { type: "button", "aria-label": `Edit ${s.label}`, onclick: () => { editing = s.id; render(); } }, "Edit"),
        servers.length > 1 ? h("button", { type: "button", "aria-label": `Remove ${s.label}`,
          onclick: () => { servers = servers.filter((x) => x.id !== s.id); settings.saveServers(servers); render(); } }, "Remove") : null))));
    replace(section,
      h("h2", { id: "connect-title" }, "Connect to an EHR"),
      h("p", {}, "Pick a SMART on FHIR server. The viewer launches as a public client (PKCE S256), you approve at the EHR, and it finds the imaging server from the EHR's ",
        h("code", {}, "associated_endpoints"), "."),
      list,
      h("div", { class: "buttons" },
        h("button", { type: "button", onclick: () => { editing = "new"; render(); } }, "Add a server"),
        h("button", { type: "button", onclick: () => { servers = settings.resetServers(); editing = null; render(); } }, "Reset to defaults")),
      editing ? editor(editing === "new" ? settings.normalize({ id: settings.newId(), label: "", iss: "" })
        : servers.find((s) => s.id === editing)) : null,
      ohifSetting(),
      help());
    const focusTarget = section.querySelector(editing ? "#server-label" : "button.primary");
    if (focusTarget) focusTarget.focus();
  }

  function editor(server) {
    const errors = h("ul", { class: "problems", role: "alert" });
    const form = h("form", { class: "server-form", "aria-labelledby": "server-form-title", novalidate: true },
      h("h3", { id: "server-form-title" }, editing === "new" ? "Add a server" : `Edit ${server.label}`),
      FIELDS.map(([name, label, type, hint]) => field(server, name, label, type, hint)),
      errors,
      h("div", { class: "buttons" },
        h("button", { type: "submit", class: "primary" }, "Save"),
        h("button", { type: "button", onclick: () => { editing = null; render(); } }, "Cancel")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      data.dualLaunch = form.querySelector("#server-dualLaunch").checked;
      const entry = settings.normalize({ ...server, ...data });
      const problems = settings.validateServer(entry);
      if (problems.length) {
        replace(errors, problems.map((p) => h("li", {}, h("label", { for: `server-${p.field}` }, `${p.field}: ${p.message}`))));
        form.querySelector(`#server-${problems[0].field}`).focus();
        return;
      }
      const at = servers.findIndex((s) => s.id === entry.id);
      if (at >= 0) servers[at] = entry; else servers.push(entry);
      settings.saveServers(servers);
      editing = null;
      render();
    });
    return form;
  }

  function field(server, name, label, type, hint) {
    const checkbox = type === "checkbox";
    const input = h("input", { id: `server-${name}`, name, type, "aria-describedby": `server-${name}-hint`,
      value: checkbox ? null : server[name] || "", checked: checkbox && Boolean(server[name]),
      required: !OPTIONAL.has(name), spellcheck: "false", autocomplete: "off" });
    return h("div", { class: checkbox ? "field checkbox" : "field" },
      checkbox ? h("label", { for: `server-${name}` }, input, " ", label) : [h("label", { for: `server-${name}` }, label), input],
      h("small", { id: `server-${name}-hint`, class: "muted" }, hint));
  }

  /** The viewer's own OHIF URL ("Open in OHIF"); the server's (SMART_IMAGING_OHIF_URL) shows as placeholder. */
  function ohifSetting() {
    const input = h("input", { id: "ohif-url", name: "ohif", type: "url", value: savedOhifUrl(),
      "aria-describedby": "ohif-url-hint", spellcheck: "false", autocomplete: "off" });
    const status = h("small", { id: "ohif-url-hint", class: "muted", role: "status" },
      "An OHIF v3 deployment configured for this server (docs/notes/ohif.md); studies get an \u201cOpen in OHIF\u201d button. Empty: the server's default.");
    serverOhifUrl().then((url) => { if (url) input.placeholder = url; });
    const form = h("form", { class: "ohif-form", "aria-labelledby": "ohif-title", novalidate: true },
      h("h3", { id: "ohif-title" }, "OHIF viewer (optional)"),
      h("div", { class: "field" }, h("label", { for: "ohif-url" }, "OHIF URL"), input, status),
      h("div", { class: "buttons" }, h("button", { type: "submit", id: "ohif-save" }, "Set OHIF URL")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const problem = saveOhifUrl(input.value);
      status.textContent = problem ? `OHIF URL: ${problem}` : input.value.trim() ? "Saved." : "Cleared: the server's default applies.";
    });
    return form;
  }

  function help() {
    const keys = [["1–9", "connect to a server, open a study, pick a series"], ["Esc", "back (viewer → studies), close the trace or the editor"],
      ["↑ ↓ ← → / wheel", "previous / next image"], ["PgUp PgDn Home End", "jump 10 images, first, last"],
      ["drag", "window level (up/down) and width (left/right)"], ["shift-drag / right-drag", "pan"],
      ["+ − / ctrl-wheel", "zoom"], ["0", "reset window, zoom and pan"]];
    return h("section", { class: "help", "aria-labelledby": "help-title" },
      h("h3", { id: "help-title" }, "How it works"),
      h("ol", {},
        h("li", {}, "Discovery: the EHR's ", h("code", {}, ".well-known/smart-configuration"), "."),
        h("li", {}, "You approve at the EHR; the viewer checks ", h("code", {}, "state"), " and exchanges the code (PKCE)."),
        h("li", {}, "Patient, conditions, allergies and medications come from the EHR; ", h("code", {}, "ImagingStudy"), " from the imaging server with the same token."),
        h("li", {}, "Dual launch: the imaging server has its own authorization server; the viewer launches there too, with the EHR's id_token as ", h("code", {}, "login_hint"), ", and uses that token for imaging."),
        h("li", {}, "Images stream over WADO-RS from each study's Endpoint. Open the protocol trace to see every exchange.")),
      h("h3", {}, "Keyboard"),
      h("dl", { class: "facts keys" }, keys.map(([k, v]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, v)])));
  }

  render();
  return {
    connectNumber(n) { if (servers[n - 1]) onConnect(servers[n - 1]); },
    isEditing: () => editing !== null,
    cancelEdit() { editing = null; render(); },
  };
}
