// Pixel decoding (native little endian, JPEG Baseline through the browser's decoder) and
// drawing with window level/width (PS3.3 C.11.2.1.2), zoom and pan.

import { TS, TS_NAMES, frameBytes, DicomError } from "./dicom.js";

const NATIVE = new Set([TS.IMPLICIT_LE, TS.EXPLICIT_LE]);

export class UnsupportedError extends Error {}

export function supportMessage(transferSyntax) {
  const name = TS_NAMES[transferSyntax] || "an unknown transfer syntax";
  return `This image came as ${name} (${transferSyntax}), which this viewer cannot decode. ` +
    "It shows uncompressed (little endian) and JPEG Baseline images, and asks the server for one of " +
    "those; this server sent another.";
}

/**
 * Decode frame `n` of a parsed instance into {width, height, gray?: Float32Array, rgba?,
 * min, max, window: {center, width}|null, invert}.
 */
export async function decodeFrame(bytes, parsed, n = 0) {
  const a = parsed.attrs;
  if (parsed.unsupported || !(NATIVE.has(parsed.transferSyntax) || parsed.transferSyntax === TS.JPEG_BASELINE)) {
    throw new UnsupportedError(supportMessage(parsed.transferSyntax));
  }
  if (!parsed.pixelData) throw new DicomError("This instance has no image (no Pixel Data).");
  const width = a.Columns, height = a.Rows;
  const photometric = String(a.PhotometricInterpretation || "MONOCHROME2");
  const mono = photometric.startsWith("MONOCHROME");
  const data = frameBytes(bytes, parsed, n);
  let image;
  if (parsed.transferSyntax === TS.JPEG_BASELINE) image = await decodeJpeg(data, width, height, mono);
  else if (mono) image = decodeNativeGray(data, a, width, height);
  else image = decodeNativeColor(data, a, width, height, photometric);
  image.invert = photometric === "MONOCHROME1";
  image.window = image.gray ? defaultWindow(a, image) : null;
  return image;
}

function decodeNativeGray(data, a, width, height) {
  const count = width * height;
  const bits = a.BitsAllocated || 16, stored = a.BitsStored || bits;
  const signed = a.PixelRepresentation === 1;
  const slope = Number(first(a.RescaleSlope) ?? 1) || 1, intercept = Number(first(a.RescaleIntercept) ?? 0) || 0;
  const aligned = new Uint8Array(data); // copy: the source offset may be odd
  let raw;
  if (bits === 8) raw = signed ? new Int8Array(aligned.buffer, 0, count) : aligned.subarray(0, count);
  else if (bits === 16) raw = signed ? new Int16Array(aligned.buffer, 0, count) : new Uint16Array(aligned.buffer, 0, count);
  else if (bits === 32) raw = signed ? new Int32Array(aligned.buffer, 0, count) : new Uint32Array(aligned.buffer, 0, count);
  else throw new UnsupportedError(`Bits Allocated ${bits} is not supported.`);
  const gray = new Float32Array(count);
  const shift = 32 - stored;
  const mask = stored >= 32 ? 0xffffffff : (2 ** stored) - 1;
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < count; i++) {
    let v = raw[i];
    if (stored < bits) v = signed ? ((v << shift) >> shift) : (v & mask);
    v = v * slope + intercept;
    gray[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { width, height, gray, min, max };
}

function decodeNativeColor(data, a, width, height, photometric) {
  if (photometric !== "RGB" || (a.BitsAllocated || 8) !== 8) {
    throw new UnsupportedError(`Photometric interpretation ${photometric} (${a.BitsAllocated}-bit) is not supported.`);
  }
  const count = width * height, rgba = new Uint8ClampedArray(count * 4);
  const planar = a.PlanarConfiguration === 1;
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = planar ? data[c * count + i] : data[i * 3 + c];
    rgba[i * 4 + 3] = 255;
  }
  return { width, height, rgba, min: 0, max: 255 };
}

async function decodeJpeg(data, width, height, mono) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([data], { type: "image/jpeg" }));
  } catch (err) {
    throw new DicomError(`The browser could not decode this JPEG frame (${err.message}).`);
  }
  const w = bitmap.width || width, h = bitmap.height || height;
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, w, h).data;
  if (!mono) return { width: w, height: h, rgba, min: 0, max: 255 };
  const gray = new Float32Array(w * h);
  let min = 255, max = 0;
  for (let i = 0; i < gray.length; i++) {
    const v = rgba[i * 4];
    gray[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { width: w, height: h, gray, min, max };
}

function first(value) {
  return Array.isArray(value) ? value[0] : value;
}

/** The DICOM default window (first WindowCenter/Width pair), else the full pixel range. */
export function defaultWindow(a, image) {
  const center = first(a.WindowCenter), width = first(a.WindowWidth);
  if (Number.isFinite(center) && Number.isFinite(width) && width > 0) {
    const explanation = String(a.WindowCenterWidthExplanation || "").split("\\")[0];
    return { center, width, source: explanation ? `DICOM (${explanation})` : "DICOM default" };
  }
  const span = Math.max(1, image.max - image.min);
  return { center: image.min + span / 2, width: span, source: "pixel range" };
}

/** Paint the image at the given window into an ImageData (grayscale LUT or color passthrough). */
export function toImageData(image, window) {
  if (image.rgba) return new ImageData(new Uint8ClampedArray(image.rgba), image.width, image.height);
  const out = new Uint8ClampedArray(image.width * image.height * 4);
  const c = window.center - 0.5, w = Math.max(1, window.width - 1);
  const lo = c - w / 2, hi = c + w / 2, scale = 255 / w;
  const gray = image.gray, invert = image.invert;
  for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
    const v = gray[i];
    let y = v <= lo ? 0 : v > hi ? 255 : (v - lo) * scale;
    if (invert) y = 255 - y;
    out[j] = out[j + 1] = out[j + 2] = y;
    out[j + 3] = 255;
  }
  return new ImageData(out, image.width, image.height);
}

/** Draw onto `canvas` (CSS-sized) with zoom (1 = fit) and pan (CSS pixels). */
export function draw(canvas, image, view) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || canvas.width, cssH = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!image) return;
  const key = image.rgba ? "color" : `${view.window.center}/${view.window.width}`;
  if (!image.bitmap || image.bitmapKey !== key) {
    image.bitmap = image.bitmap || new OffscreenCanvas(image.width, image.height);
    image.bitmap.getContext("2d").putImageData(toImageData(image, view.window), 0, 0);
    image.bitmapKey = key;
  }
  const fit = Math.min(canvas.width / image.width, canvas.height / image.height);
  const scale = fit * view.zoom;
  const x = (canvas.width - image.width * scale) / 2 + view.panX * dpr;
  const y = (canvas.height - image.height * scale) / 2 + view.panY * dpr;
  ctx.imageSmoothingEnabled = scale < 4;
  ctx.drawImage(image.bitmap, x, y, image.width * scale, image.height * scale);
}

/** A small thumbnail canvas of an image at its default window. */
export function thumbnail(canvas, image) {
  const size = canvas.width;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, size, canvas.height);
  const tmp = new OffscreenCanvas(image.width, image.height);
  tmp.getContext("2d").putImageData(toImageData(image, image.window || { center: 128, width: 256 }), 0, 0);
  const s = Math.min(size / image.width, canvas.height / image.height);
  ctx.drawImage(tmp, (size - image.width * s) / 2, (canvas.height - image.height * s) / 2, image.width * s, image.height * s);
}
