// The protocol trace drawer: one row per HTTP exchange, headers on demand.

import { h, replace } from "./dom.js";
import * as trace from "./trace.js";

const expanded = new Set(); // entry ids whose details are open, kept across re-renders

export function mountTrace(toggle, drawer, count) {
  let open = false;
  const list = h("ol", { class: "trace-list" });
  const header = h("div", { class: "trace-head" },
    h("h2", { id: "trace-title" }, "Protocol trace"),
    h("p", { class: "hint" }, "Every HTTP exchange of the SMART and imaging flow. Tokens, codes and verifiers are redacted."),
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: () => trace.clear() }, "Clear"),
      h("button", { type: "button", onclick: () => setOpen(false) }, "Close")));
  drawer.setAttribute("aria-labelledby", "trace-title");
  replace(drawer, header, list);

  function setOpen(value) {
    open = value;
    drawer.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("trace-open", open);
    if (open) drawer.querySelector("button").focus();
    else toggle.focus();
  }
  toggle.addEventListener("click", () => setOpen(!open));
  trace.onChange((entries) => {
    count.textContent = String(entries.length);
    replace(list, entries.map(row));
  });
  return { setOpen, isOpen: () => open };
}

function statusClass(status) {
  if (typeof status !== "number") return status === "network error" ? "bad" : "info";
  return status < 300 ? "ok" : status < 400 ? "info" : status === 503 ? "warn" : "bad";
}

function row(entry) {
  const timing = entry.ms !== undefined ? `${entry.ms} ms` : entry.headersMs !== undefined ? `${entry.headersMs} ms…` : "";
  const details = h("details", { class: "trace-details", open: expanded.has(entry.id),
    ontoggle: (event) => { if (event.target.open) expanded.add(entry.id); else expanded.delete(entry.id); } },
    h("summary", {},
      h("span", { class: "trace-step" }, entry.step),
      h("span", { class: "trace-method" }, entry.method || ""),
      h("span", { class: `trace-status ${statusClass(entry.status)}` }, String(entry.status ?? "")),
      h("span", { class: "trace-ms" }, timing),
      h("span", { class: "trace-url" }, entry.url || "")),
    h("div", { class: "trace-body" },
      entry.detail ? h("p", {}, entry.detail) : null,
      entry.error ? h("p", { class: "bad" }, entry.error) : null,
      entry.bytes !== undefined ? h("p", {}, `${entry.bytes} bytes received`) : null,
      headerTable("Request headers", entry.requestHeaders),
      entry.requestBody ? kvTable("Request body (form)", Object.entries(entry.requestBody)) : null,
      headerTable("Response headers", entry.responseHeaders),
      entry.responseBody ? kvTable("Response body", Object.entries(entry.responseBody)
        .map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])) : null));
  return h("li", { class: "trace-entry", dataset: { step: entry.step, status: String(entry.status) } }, details);
}

function headerTable(title, headers) {
  if (!headers || !headers.length) return null;
  return kvTable(title, headers);
}

function kvTable(title, pairs) {
  return h("table", { class: "kv" }, h("caption", {}, title),
    h("tbody", {}, pairs.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, v)))));
}
