// The viewer app: screens (connect, patient, viewer), the SMART session, keyboard shortcuts.

import * as smart from "./smart.js";
import { h, replace } from "./dom.js";
import { loadServers, addServer, DEFAULT_CLIENT_ID, DEFAULT_SCOPE } from "./settings.js";
import { mountTrace } from "./ui-trace.js";
import { renderConnect } from "./ui-connect.js";
import { renderPatient } from "./ui-patient.js";
import { renderViewer } from "./ui-viewer.js";
import { findStudy } from "./fhir.js";

const $ = (id) => document.getElementById(id);
const screens = { connect: $("screen-connect"), patient: $("screen-patient"), viewer: $("screen-viewer") };
let screen = null;
let session = null;
let controller = null; // the current screen's handle
let patientScreen = null;
let refreshTimer = null;

const traceDrawer = mountTrace($("trace-toggle"), $("trace"), $("trace-count"));

function show(name) {
  screen = name;
  for (const [key, el] of Object.entries(screens)) el.hidden = key !== name;
  document.body.dataset.screen = name;
}

function message(text, kind = "error") {
  const box = $("message");
  if (!text) { box.hidden = true; box.replaceChildren(); return; }
  replace(box, h("span", {}, text), h("button", { type: "button", class: "close", "aria-label": "Dismiss message",
    onclick: () => message(null) }, "×"));
  box.className = `message ${kind}`;
  box.hidden = false;
}

function renderConnection() {
  const el = $("connection");
  if (!session) { replace(el); return; }
  const mode = session.imaging && session.imaging.accessToken ? " · dual launch" : "";
  replace(el,
    h("span", { class: "muted" }, `${session.server.label}${mode} · patient `, h("code", {}, session.patient)),
    h("button", { type: "button", id: "disconnect", onclick: disconnect }, "Disconnect"));
}

async function getToken() {
  session = await smart.ensureFresh(session);
  scheduleRefresh();
  return session.accessToken;
}

/** The token for imaging calls: the imaging server's own in a dual launch, else the EHR's. */
async function getImagingToken() {
  if (!session.imaging || !session.imaging.accessToken) return getToken();
  session = await smart.ensureFreshImaging(session);
  return session.imaging.accessToken;
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session || !session.refreshToken) return;
  const wait = Math.max(5000, session.expiresAt - Date.now() - 60_000);
  refreshTimer = setTimeout(() => getToken().catch((err) => message(`Token refresh failed: ${err.message}`)), wait);
}

async function connect(server, launch = null) {
  message(null);
  try {
    await smart.beginLaunch(server, { launch });
  } catch (err) {
    message(`Could not start the launch at ${server.iss}: ${err.message}`);
  }
}

async function disconnect() {
  const old = session;
  session = null;
  if (patientScreen) patientScreen.stop();
  patientScreen = null;
  clearTimeout(refreshTimer);
  stopScreen();
  await smart.disconnect(old);
  renderConnection();
  showConnect();
  message("Disconnected. The session was forgotten and its token revoked at the EHR.", "info");
}

function stopScreen() {
  if (controller && controller.stop) controller.stop();
  controller = null;
}

function showConnect() {
  stopScreen();
  show("connect");
  controller = renderConnect(screens.connect, { onConnect: (server) => connect(server) });
}

function showPatient() {
  stopScreen();
  show("patient");
  if (!patientScreen) {
    patientScreen = renderPatient(screens.patient, {
      session, getToken, getImagingToken, onOpenStudy: openStudy,
      onError: () => {},
    });
  }
  controller = { ...patientScreen, stop: null };
  patientScreen.focusStudies();
}

/** A fresh Endpoint for a study: search again (patient and identifier) with a valid token. */
async function refreshStudy(study) {
  const patient = session.imaging.patient || session.patient;
  return findStudy(session.imaging.url, patient, study.uid, await getImagingToken());
}

async function openStudy(study) {
  const startedAt = performance.now();
  if (!study.wado) { message("This study has no WADO-RS Endpoint the viewer can use."); return; }
  message(null);
  stopScreen();
  show("viewer");
  // WADO-RS gets the token the study was found with (IG); a 403 searches again (refreshStudy).
  if (!study.token) {
    try { study = { ...study, token: await getImagingToken() }; } catch (err) { message(err.message); return; }
  }
  controller = renderViewer(screens.viewer, { study, startedAt, refresh: refreshStudy, onBack: showPatient, onError: () => {} });
  document.title = `${study.description || "Study"} - SMART Imaging Viewer`;
}

function onKey(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  const typing = target.matches && target.matches("input:not([type=range]), textarea, select");
  if (event.key === "Escape") {
    if (traceDrawer.isOpen()) traceDrawer.setOpen(false);
    else if (screen === "viewer") showPatient();
    else if (screen === "connect" && controller && controller.isEditing && controller.isEditing()) controller.cancelEdit();
    else return;
    event.preventDefault();
    return;
  }
  if (typing || traceDrawer.isOpen()) return;
  if (target.matches && target.matches("input[type=range]") && event.key.startsWith("Arrow")) return;
  if (screen === "viewer" && controller && controller.key(event)) { event.preventDefault(); return; }
  if (/^[1-9]$/.test(event.key)) {
    if (screen === "patient" && patientScreen) patientScreen.openNumber(Number(event.key));
    else if (screen === "connect" && controller) controller.connectNumber(Number(event.key));
    else return;
    event.preventDefault();
  }
}

async function start() {
  document.addEventListener("keydown", onKey);
  const params = new URLSearchParams(location.search);
  if (smart.hasCallback(params)) {
    history.replaceState(null, "", location.pathname);
    try {
      session = await smart.completeLaunch(params);
    } catch (err) {
      showConnect();
      message(err.message);
      return;
    }
    if (!session) { // dual launch: the browser is on its way to the imaging leg
      show("connect");
      message("EHR launch done; continuing at the imaging server's authorization server…", "info");
      return;
    }
  } else if (params.has("iss")) {
    history.replaceState(null, "", location.pathname);
    const iss = params.get("iss").replace(/\/+$/, "");
    const server = loadServers().find((s) => s.iss === iss)
      || addServer({ label: new URL(iss).host, iss, clientId: DEFAULT_CLIENT_ID, scope: DEFAULT_SCOPE });
    showConnect();
    await connect(server, params.get("launch"));
    return;
  } else {
    session = smart.loadSession();
  }
  if (!session) { showConnect(); return; }
  try {
    await getToken();
  } catch (err) {
    session = null;
    smart.saveSession(null);
    showConnect();
    message(err.message);
    return;
  }
  renderConnection();
  showPatient();
}

window.viewerApp = { get session() { return session; }, screen: () => screen, trace: traceDrawer };
start();
