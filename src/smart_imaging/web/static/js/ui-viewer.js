// The viewer screen: streams a study over WADO-RS, shows the first image as soon as it arrives,
// series list with thumbnails, instance scrolling, window level/width, zoom/pan, details.

import { h, replace, formatDate, formatBytes } from "./dom.js";
import { retrieveWithRecovery } from "./retrieval.js";
import { decodeFrame, draw, thumbnail, UnsupportedError } from "./render.js";
import { TS_NAMES } from "./dicom.js";
import { explain } from "./ui-patient.js";
import { ohifLink, ohifUrl } from "./ohif.js";
import { note, redactUrl } from "./trace.js";

export const metrics = (window.viewerMetrics = window.viewerMetrics || {});

export function renderViewer(section, { study, startedAt, refresh = null, onBack, onError }) {
  const clickAt = startedAt ?? performance.now();
  Object.assign(metrics, { studyUid: study.uid, clickAt, firstImageMs: null, seriesCompleteMs: {},
    studyCompleteMs: null, firstSeriesUid: null, instances: 0, bytes: 0 });
  const abort = new AbortController();
  const series = new Map(); // uid -> {uid, number, description, modality, expected, instances[], button, thumb}
  let current = null, index = 0, view = null, drawing = 0, done = false, transferSyntaxes = new Set();

  const canvas = h("canvas", { id: "image", class: "image-canvas", "aria-hidden": "true" });
  const overlayTL = h("div", { class: "overlay tl", id: "overlay-instance" });
  const overlayBR = h("div", { class: "overlay br", id: "overlay-window" });
  const stageMessage = h("div", { class: "stage-message", id: "stage-message", role: "status" }, "Retrieving the study…");
  const stage = h("div", { class: "canvas-wrap", tabindex: "0", id: "stage",
    "aria-label": "Image. Drag to change window level and width, shift-drag or right-drag to pan, wheel or arrow keys to scroll, plus and minus to zoom." },
    canvas, overlayTL, overlayBR, stageMessage);
  const slider = h("input", { type: "range", id: "instance-slider", min: "1", max: "1", value: "1", disabled: true });
  const sliderLabel = h("output", { id: "instance-label", for: "instance-slider" }, "0 / 0");
  const progress = h("progress", { id: "progress", max: String(Math.max(1, study.instanceCount || 1)), value: "0" });
  const progressText = h("span", { id: "progress-text", class: "muted" }, "");
  const seriesList = h("ol", { class: "series-list", id: "series-list" });
  const ohifButton = h("button", { type: "button", id: "open-ohif", hidden: true, onclick: () => openInOhif() }, "Open in OHIF");
  const details = h("div", { class: "details-body", id: "details" });

  replace(section, h("div", { class: "viewer-layout" },
    h("nav", { class: "series-panel", "aria-labelledby": "series-title" },
      h("h2", { id: "series-title" }, "Series"), h("p", { class: "hint" }, "Keys 1–9"), seriesList),
    h("div", { class: "stage-column" },
      h("div", { class: "toolbar" },
        h("button", { type: "button", id: "back", onclick: onBack, title: "Esc" }, "← Studies"),
        h("h2", { class: "study-title", id: "study-title" }, study.description || "Study",
          h("small", { class: "muted" }, ` ${formatDate(study.date)} · ${study.modality}`)),
        h("div", { class: "buttons" },
          h("button", { type: "button", onclick: () => zoom(1.25), title: "+" }, "Zoom in"),
          h("button", { type: "button", onclick: () => zoom(0.8), title: "-" }, "Zoom out"),
          h("button", { type: "button", id: "reset-view", onclick: () => resetView(), title: "0" }, "Reset"),
          ohifButton)),
      stage,
      h("div", { class: "slider-row" },
        h("label", { for: "instance-slider" }, "Instance"), slider, sliderLabel),
      h("div", { class: "progress-row" }, h("label", { for: "progress" }, "Download"), progress, progressText)),
    h("aside", { class: "details-panel", "aria-labelledby": "details-title" },
      h("h2", { id: "details-title" }, "Details"), details)));

  for (const s of study.series) addSeries(s.uid, s);
  renderDetails();
  ohifUrl().then((url) => {
    if (!url) return;
    ohifButton.hidden = false;
    ohifButton.title = `Opens this study in OHIF at ${new URL(url).origin}, with this session's token`;
  });
  wireInput();
  const resize = new ResizeObserver(() => redraw());
  resize.observe(stage);

  retrieveWithRecovery(study, {
    refresh,
    signal: abort.signal,
    onInstance,
    onProgress: (bytes) => { metrics.bytes = bytes; updateProgress(); },
  }).then((result) => {
    metrics.bySeries = result.bySeries;
    done = true;
    metrics.studyCompleteMs = performance.now() - clickAt;
    for (const s of series.values()) if (!(s.uid in metrics.seriesCompleteMs)) metrics.seriesCompleteMs[s.uid] = metrics.studyCompleteMs;
    updateProgress();
    if (!metrics.instances) showMessage("The server returned no instances for this study.");
  }).catch((err) => {
    if (abort.signal.aborted) return;
    showMessage(explain(err), true);
    onError(err, "wado");
  });

  async function openInOhif() {
    const link = ohifLink(await ohifUrl(), study);
    note("Open in OHIF", { method: "GET", url: redactUrl(link), status: "new window" });
    window.open(link, "_blank", "noopener");
  }

  function addSeries(uid, info = {}) {
    const thumb = h("canvas", { class: "thumb", width: "72", height: "72", "aria-hidden": "true" });
    const countEl = h("span", { class: "series-count" }, `0 / ${info.count ?? "?"}`);
    const entry = { uid, number: info.number, description: info.description || "", modality: info.modality || "",
      expected: info.count ?? null, instances: [], thumb, countEl, thumbDone: false };
    const n = series.size + 1;
    entry.button = h("button", { type: "button", class: "series", "data-series": uid, "aria-pressed": "false",
      onclick: () => selectSeries(uid) },
      thumb, h("span", { class: "series-text" },
        h("span", { class: "series-name" }, `${n <= 9 ? `${n}. ` : ""}${entry.description || `Series ${entry.number ?? n}`}`),
        h("span", { class: "muted" }, `${entry.modality}${entry.number !== undefined ? ` · #${entry.number}` : ""}`),
        countEl));
    seriesList.append(h("li", {}, entry.button));
    series.set(uid, entry);
    return entry;
  }

  function onInstance({ bytes, parsed }) {
    const a = parsed.attrs;
    transferSyntaxes.add(parsed.transferSyntax);
    metrics.instances += 1;
    const s = series.get(a.SeriesInstanceUID) || addSeries(a.SeriesInstanceUID,
      { number: a.SeriesNumber, description: a.SeriesDescription, modality: a.Modality });
    if (!s.description && a.SeriesDescription) s.description = a.SeriesDescription;
    s.received = (s.received || 0) + 1;
    // A multi-frame instance is scrolled frame by frame, like slices.
    const frames = Math.max(1, Number(a.NumberOfFrames || 1) || 1);
    let first = null;
    for (let frame = 0; frame < frames; frame++) {
      const inst = { bytes, parsed, a, number: Number(a.InstanceNumber ?? 0), frame, frames, image: null };
      let at = s.instances.findIndex((x) => order(inst, x) < 0);
      if (at < 0) at = s.instances.length;
      s.instances.splice(at, 0, inst);
      if (current === s && at <= index && s.instances.length > 1) index += 1;
      first = first || inst;
    }
    s.countEl.textContent = `${s.received} / ${s.expected ?? "?"}`;
    if (s.expected && s.received >= s.expected && !(s.uid in metrics.seriesCompleteMs)) {
      metrics.seriesCompleteMs[s.uid] = performance.now() - clickAt;
    }
    if (!s.thumbDone) { s.thumbDone = true; makeThumb(s, first); }
    if (!current) {
      metrics.firstSeriesUid = s.uid;
      selectSeries(s.uid, true);
    } else if (current === s) {
      updateSlider();
      refreshOverlay();
      if (s.received === s.expected) renderDetails(s.instances[index]);
    }
    updateProgress();
  }

  function order(x, y) {
    return (x.number - y.number) || (Number(x.a.SliceLocation ?? 0) - Number(y.a.SliceLocation ?? 0)) ||
      (x.frame - y.frame);
  }

  async function makeThumb(s, inst) {
    try {
      thumbnail(s.thumb, await imageOf(inst));
    } catch (err) {
      const ctx = s.thumb.getContext("2d");
      ctx.fillStyle = "#400"; ctx.fillRect(0, 0, 72, 72);
      s.button.title = err.message;
    }
  }

  function imageOf(inst) {
    if (!inst.image) inst.image = decodeFrame(inst.bytes, inst.parsed, inst.frame || 0);
    return inst.image;
  }

  function selectSeries(uid, keepFocus = false) {
    const s = series.get(uid);
    if (!s || !s.instances.length) {
      if (s) showMessage("This series has not arrived yet.");
      return;
    }
    if (current) current.button.setAttribute("aria-pressed", "false");
    current = s;
    s.button.setAttribute("aria-pressed", "true");
    index = 0;
    view = null;
    updateSlider();
    show();
    if (!keepFocus) stage.focus();
  }

  function updateSlider() {
    if (!current) return;
    slider.max = String(current.instances.length);
    slider.value = String(index + 1);
    slider.disabled = current.instances.length < 2;
    sliderLabel.textContent = `${index + 1} / ${current.instances.length}${current.expected && current.expected > current.instances.length ? ` (of ${current.expected})` : ""}`;
  }

  async function show() {
    if (!current) return;
    const ticket = ++drawing;
    const inst = current.instances[index];
    try {
      const image = await imageOf(inst);
      if (ticket !== drawing) return;
      if (!view || view.seriesUid !== current.uid) {
        view = { seriesUid: current.uid, window: image.window ? { ...image.window } : null, zoom: 1, panX: 0, panY: 0 };
      }
      hideMessage();
      draw(canvas, image, view);
      if (metrics.firstImageMs === null) {
        requestAnimationFrame(() => {
          if (metrics.firstImageMs !== null) return;
          metrics.firstImageMs = performance.now() - clickAt;
          metrics.instancesAtFirstImage = metrics.instances;
          metrics.bytesAtFirstImage = metrics.bytes;
        });
      }
      overlay(inst, image);
    } catch (err) {
      if (ticket !== drawing) return;
      draw(canvas, null, view || {});
      overlay(inst, null);
      showMessage(err instanceof UnsupportedError ? err.message : `Cannot show this image: ${err.message}`, true);
      if (metrics.firstImageMs === null) metrics.firstImageError = err.message;
    }
    updateSlider();
    renderDetails(inst);
  }

  function redraw() {
    if (!current) return;
    const inst = current.instances[index];
    if (inst && inst.image) inst.image.then((image) => draw(canvas, image, view)).catch(() => {});
  }

  function overlay(inst, image) {
    overlayTL.textContent = `${current.description || "Series"}\nImage ${index + 1} / ${current.instances.length}` +
      (inst.a.InstanceNumber !== undefined ? ` (#${inst.a.InstanceNumber})` : "") +
      (inst.frames > 1 ? `\nFrame ${inst.frame + 1} of ${inst.frames}` : "");
    overlayBR.textContent = image && view && view.window
      ? `W ${Math.round(view.window.width)} L ${Math.round(view.window.center)}\nZoom ${Math.round(view.zoom * 100)}%`
      : "";
  }

  function go(delta, absolute = null) {
    if (!current || !current.instances.length) return;
    const next = absolute !== null ? absolute : index + delta;
    const clamped = Math.max(0, Math.min(current.instances.length - 1, next));
    if (clamped === index) return;
    index = clamped;
    show();
  }

  function zoom(factor) {
    if (!view) return;
    view.zoom = Math.max(0.1, Math.min(20, view.zoom * factor));
    redraw();
    refreshOverlay();
  }

  function resetView() {
    view = null;
    show();
  }

  function refreshOverlay() {
    const inst = current && current.instances[index];
    if (inst && inst.image) inst.image.then((image) => overlay(inst, image)).catch(() => {});
  }

  function wireInput() {
    slider.addEventListener("input", () => go(0, Number(slider.value) - 1));
    stage.addEventListener("wheel", (event) => {
      event.preventDefault();
      if (event.ctrlKey || event.metaKey) zoom(event.deltaY < 0 ? 1.1 : 0.9);
      else go(event.deltaY > 0 ? 1 : -1);
    }, { passive: false });
    stage.addEventListener("contextmenu", (event) => event.preventDefault());
    let drag = null;
    stage.addEventListener("pointerdown", (event) => {
      if (!view) return;
      stage.setPointerCapture(event.pointerId);
      drag = { x: event.clientX, y: event.clientY, pan: event.button !== 0 || event.shiftKey };
    });
    stage.addEventListener("pointermove", (event) => {
      if (!drag || !view) return;
      const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      drag.x = event.clientX; drag.y = event.clientY;
      if (drag.pan) { view.panX += dx; view.panY += dy; }
      else if (view.window) {
        const inst = current.instances[index];
        inst.image.then((image) => {
          const step = Math.max(0.05, (image.max - image.min) / 400);
          view.window.width = Math.max(1, view.window.width + dx * step);
          view.window.center += dy * step;
        });
      }
      requestAnimationFrame(() => { redraw(); refreshOverlay(); });
    });
    const end = () => { drag = null; };
    stage.addEventListener("pointerup", end);
    stage.addEventListener("pointercancel", end);
  }

  function updateProgress() {
    progress.value = metrics.instances;
    progressText.textContent = `${metrics.instances}${study.instanceCount ? ` / ${study.instanceCount}` : ""} images · ${formatBytes(metrics.bytes)}${done ? " · complete" : ""}`;
  }

  function showMessage(text, isError = false) {
    stageMessage.textContent = text;
    stageMessage.classList.toggle("error", isError);
    stageMessage.hidden = false;
  }

  function hideMessage() { stageMessage.hidden = true; }

  function renderDetails(inst) {
    const a = inst ? inst.a : {};
    const ts = inst ? inst.parsed.transferSyntax : [...transferSyntaxes][0];
    const rows = (pairs) => h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
    replace(details,
      h("h3", {}, "Study"), rows([["Description", study.description], ["Date", formatDate(study.date)],
        ["Modality", study.modality], ["Accession", a.AccessionNumber], ["Series", study.seriesCount],
        ["Instances", study.instanceCount], ["Study UID", study.uid]]),
      current ? [h("h3", {}, "Series"), rows([["Description", current.description], ["Number", current.number ?? a.SeriesNumber],
        ["Modality", current.modality || a.Modality], ["Body part", a.BodyPartExamined],
        ["Instances", `${current.received ?? current.instances.length}${current.expected ? ` of ${current.expected}` : ""}`], ["Series UID", current.uid]])] : null,
      inst ? [h("h3", {}, "Instance"), rows([["Number", a.InstanceNumber], ["Size", `${a.Columns} × ${a.Rows}`],
        ["Bits", a.BitsAllocated && `${a.BitsStored ?? a.BitsAllocated} of ${a.BitsAllocated}${a.PixelRepresentation ? " signed" : ""}`],
        ["Photometric", a.PhotometricInterpretation], ["Frames", a.NumberOfFrames],
        ["Window (DICOM)", a.WindowWidth !== undefined ? `W ${[].concat(a.WindowWidth)[0]} L ${[].concat(a.WindowCenter)[0]}` : "none"],
        ["Rescale", a.RescaleSlope !== undefined ? `× ${a.RescaleSlope} + ${a.RescaleIntercept ?? 0}` : undefined],
        ["Pixel spacing", Array.isArray(a.PixelSpacing) ? `${a.PixelSpacing.join(" × ")} mm` : a.PixelSpacing],
        ["Slice thickness", a.SliceThickness !== undefined ? `${a.SliceThickness} mm` : undefined],
        ["Slice location", a.SliceLocation], ["Transfer syntax", ts && `${TS_NAMES[ts] || "unknown"} (${ts})`],
        ["SOP Class", a.SOPClassUID], ["SOP Instance", a.SOPInstanceUID], ["Size on wire", formatBytes(inst.bytes.length)]])] : null);
  }

  return {
    key(event) {
      const k = event.key;
      if (k === "ArrowDown" || k === "ArrowRight" || k === "PageDown") go(k === "PageDown" ? 10 : 1);
      else if (k === "ArrowUp" || k === "ArrowLeft" || k === "PageUp") go(k === "PageUp" ? -10 : -1);
      else if (k === "Home") go(0, 0);
      else if (k === "End") go(0, Infinity);
      else if (k === "+" || k === "=") zoom(1.25);
      else if (k === "-") zoom(0.8);
      else if (k === "0") resetView();
      else if (/^[1-9]$/.test(k)) { const s = [...series.values()][Number(k) - 1]; if (s) selectSeries(s.uid); }
      else return false;
      return true;
    },
    stop() { abort.abort(); resize.disconnect(); drawing++; },
    state: () => ({ series: current && current.uid, index, count: current ? current.instances.length : 0, view }),
  };
}
