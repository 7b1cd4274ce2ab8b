// A small DICOM Part-10 parser (PS3.10 7.1, PS3.5 7.1): explicit and implicit VR little endian,
// encapsulated pixel data (PS3.5 A.4). It reads the top-level attributes the viewer shows and
// locates the pixel data; sequences are skipped.

export const TS = {
  IMPLICIT_LE: "1.2.840.10008.1.2",
  EXPLICIT_LE: "1.2.840.10008.1.2.1",
  DEFLATED_LE: "1.2.840.10008.1.2.1.99",
  EXPLICIT_BE: "1.2.840.10008.1.2.2",
  JPEG_BASELINE: "1.2.840.10008.1.2.4.50",
};

export const TS_NAMES = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
  "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless (Process 14)",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "1.2.840.10008.1.2.5": "RLE Lossless",
  "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
  "1.2.840.10008.1.2.4.203": "HTJ2K",
};

// tag (group<<16|element) -> [keyword, VR] for what we read; VR is needed for implicit VR.
const DICT = {
  0x00020010: ["TransferSyntaxUID", "UI"],
  0x00080016: ["SOPClassUID", "UI"], 0x00080018: ["SOPInstanceUID", "UI"],
  0x00080020: ["StudyDate", "DA"], 0x00080030: ["StudyTime", "TM"], 0x00080021: ["SeriesDate", "DA"],
  0x00080050: ["AccessionNumber", "SH"], 0x00080060: ["Modality", "CS"],
  0x00080070: ["Manufacturer", "LO"], 0x00080080: ["InstitutionName", "LO"],
  0x00081030: ["StudyDescription", "LO"], 0x0008103e: ["SeriesDescription", "LO"],
  0x00100010: ["PatientName", "PN"], 0x00100020: ["PatientID", "LO"],
  0x00100030: ["PatientBirthDate", "DA"], 0x00100040: ["PatientSex", "CS"],
  0x00180015: ["BodyPartExamined", "CS"], 0x00180050: ["SliceThickness", "DS"],
  0x0020000d: ["StudyInstanceUID", "UI"], 0x0020000e: ["SeriesInstanceUID", "UI"],
  0x00200011: ["SeriesNumber", "IS"], 0x00200013: ["InstanceNumber", "IS"],
  0x00200032: ["ImagePositionPatient", "DS"], 0x00200037: ["ImageOrientationPatient", "DS"],
  0x00201041: ["SliceLocation", "DS"],
  0x00280002: ["SamplesPerPixel", "US"], 0x00280004: ["PhotometricInterpretation", "CS"],
  0x00280006: ["PlanarConfiguration", "US"], 0x00280008: ["NumberOfFrames", "IS"],
  0x00280010: ["Rows", "US"], 0x00280011: ["Columns", "US"], 0x00280030: ["PixelSpacing", "DS"],
  0x00280100: ["BitsAllocated", "US"], 0x00280101: ["BitsStored", "US"], 0x00280102: ["HighBit", "US"],
  0x00280103: ["PixelRepresentation", "US"],
  0x00281050: ["WindowCenter", "DS"], 0x00281051: ["WindowWidth", "DS"],
  0x00281052: ["RescaleIntercept", "DS"], 0x00281053: ["RescaleSlope", "DS"],
  0x00281055: ["WindowCenterWidthExplanation", "LO"],
  0x7fe00010: ["PixelData", "OW"],
};
const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);
const ITEM = 0xfffee000, ITEM_END = 0xfffee00d, SEQ_END = 0xfffee0dd, UNDEFINED = 0xffffffff;
const text = new TextDecoder("latin1");

export class DicomError extends Error {}

/** Parse a Part-10 file. Returns {transferSyntax, attrs, pixelData}. */
export function parseDicom(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hasPreamble = bytes.length > 132 && text.decode(bytes.subarray(128, 132)) === "DICM";
  let pos = hasPreamble ? 132 : 0;
  const attrs = {};
  let transferSyntax = TS.IMPLICIT_LE;
  if (hasPreamble) {
    pos = readDataset(view, bytes, pos, true, attrs, (tag) => (tag >>> 16) !== 0x0002);
    transferSyntax = attrs.TransferSyntaxUID || TS.EXPLICIT_LE;
  }
  if (transferSyntax === TS.EXPLICIT_BE || transferSyntax === TS.DEFLATED_LE) {
    return { transferSyntax, attrs, pixelData: null, unsupported: true };
  }
  readDataset(view, bytes, pos, transferSyntax !== TS.IMPLICIT_LE, attrs, () => false);
  return { transferSyntax, attrs, pixelData: attrs.PixelData || null };
}

/** Read elements from `pos` until the end, or until `stop(tag)`; returns the position reached. */
function readDataset(view, bytes, pos, explicit, attrs, stop) {
  while (pos + 8 <= bytes.length) {
    const tag = ((view.getUint16(pos, true) << 16) | view.getUint16(pos + 2, true)) >>> 0;
    if (stop(tag)) return pos;
    const el = readHeader(view, bytes, pos, explicit && (tag >>> 16) !== 0xfffe);
    pos = el.valueStart;
    if (tag === 0x7fe00010) {
      attrs.PixelData = el.length === UNDEFINED
        ? readFragments(view, bytes, pos)
        : { native: true, offset: pos, length: Math.min(el.length, bytes.length - pos) };
      if (el.length === UNDEFINED) pos = attrs.PixelData.end;
      else pos += el.length;
      continue;
    }
    if (el.length === UNDEFINED) { pos = skipUndefined(view, bytes, pos, explicit); continue; }
    const known = DICT[tag];
    if (known && (known[1] !== "SQ")) attrs[known[0]] = decodeValue(view, bytes, pos, el.length, el.vr || known[1]);
    pos += el.length;
  }
  return pos;
}

function readHeader(view, bytes, pos, explicit) {
  if (!explicit) return { vr: null, length: view.getUint32(pos + 4, true), valueStart: pos + 8 };
  const vr = String.fromCharCode(bytes[pos + 4], bytes[pos + 5]);
  if (LONG_VRS.has(vr)) return { vr, length: view.getUint32(pos + 8, true), valueStart: pos + 12 };
  return { vr, length: view.getUint16(pos + 6, true), valueStart: pos + 8 };
}

/** Skip an undefined-length sequence (items of datasets) up to its delimitation item. */
function skipUndefined(view, bytes, pos, explicit) {
  while (pos + 8 <= bytes.length) {
    const tag = ((view.getUint16(pos, true) << 16) | view.getUint16(pos + 2, true)) >>> 0;
    const length = view.getUint32(pos + 4, true);
    pos += 8;
    if (tag === SEQ_END) return pos;
    if (tag === ITEM) {
      if (length === UNDEFINED) pos = skipItem(view, bytes, pos, explicit);
      else pos += length;
    } else {
      throw new DicomError(`malformed sequence at byte ${pos - 8}`);
    }
  }
  return pos;
}

function skipItem(view, bytes, pos, explicit) {
  while (pos + 8 <= bytes.length) {
    const tag = ((view.getUint16(pos, true) << 16) | view.getUint16(pos + 2, true)) >>> 0;
    if (tag === ITEM_END) return pos + 8;
    const el = readHeader(view, bytes, pos, explicit);
    pos = el.valueStart;
    pos = el.length === UNDEFINED ? skipUndefined(view, bytes, pos, explicit) : pos + el.length;
  }
  return pos;
}

function readFragments(view, bytes, pos) {
  const fragments = [];
  let offsets = [];
  let first = true;
  while (pos + 8 <= bytes.length) {
    const tag = ((view.getUint16(pos, true) << 16) | view.getUint16(pos + 2, true)) >>> 0;
    const length = view.getUint32(pos + 4, true);
    pos += 8;
    if (tag === SEQ_END) break;
    if (tag !== ITEM) throw new DicomError("malformed encapsulated pixel data");
    const value = bytes.subarray(pos, Math.min(pos + length, bytes.length));
    if (first) {
      offsets = [];
      for (let i = 0; i + 4 <= value.length; i += 4) offsets.push(view.getUint32(pos + i, true));
      first = false;
    } else {
      fragments.push({ offset: pos, length: value.length });
    }
    pos += length;
  }
  return { native: false, fragments, offsets, end: pos };
}

function decodeValue(view, bytes, pos, length, vr) {
  if (vr === "US") {
    const out = [];
    for (let i = 0; i + 2 <= length; i += 2) out.push(view.getUint16(pos + i, true));
    return out.length === 1 ? out[0] : out;
  }
  if (vr === "OW" || vr === "OB" || vr === "UN") return null;
  const raw = text.decode(bytes.subarray(pos, pos + length)).replace(/[\0\s]+$/, "").trim();
  if (vr === "DS" || vr === "IS") {
    const nums = raw.split("\\").map((v) => Number(v.trim())).filter((n) => !Number.isNaN(n));
    return nums.length === 1 ? nums[0] : nums;
  }
  if (vr === "PN") return raw.split("=")[0].split("^").filter(Boolean).join(" ");
  return raw;
}

/** The bytes of frame `n` (0-based): native pixel slice or the frame's JPEG bitstream. */
export function frameBytes(bytes, parsed, n = 0) {
  const pd = parsed.pixelData;
  if (!pd) throw new DicomError("the instance has no pixel data");
  const a = parsed.attrs;
  const frames = Number(a.NumberOfFrames || 1);
  if (pd.native) {
    const size = a.Rows * a.Columns * (a.SamplesPerPixel || 1) * (a.BitsAllocated / 8);
    return bytes.subarray(pd.offset + n * size, pd.offset + (n + 1) * size);
  }
  let pieces;
  if (frames === 1) pieces = pd.fragments;
  else if (pd.offsets.length === frames) {
    const base = pd.fragments.length ? pd.fragments[0].offset - 8 : 0;
    const start = base + pd.offsets[n];
    const end = n + 1 < frames ? base + pd.offsets[n + 1] : Infinity;
    pieces = pd.fragments.filter((f) => f.offset - 8 >= start && f.offset - 8 < end);
  } else if (pd.fragments.length === frames) pieces = [pd.fragments[n]];
  else throw new DicomError("cannot find the frames of this multi-frame image");
  if (pieces.length === 1) return bytes.subarray(pieces[0].offset, pieces[0].offset + pieces[0].length);
  const total = pieces.reduce((s, f) => s + f.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const f of pieces) { out.set(bytes.subarray(f.offset, f.offset + f.length), at); at += f.length; }
  return out;
}
