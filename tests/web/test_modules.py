"""The viewer's ES modules run in Chromium on data built here: the multipart parser under any
chunking, the DICOM parser (explicit/implicit VR, sequences), pixel decoding, the message for
transfer syntaxes it cannot decode, and Endpoint resolution (contained, included, urn:uuid)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, generate_uid

IMPORTS = """async (args) => {
  const m = {};
  for (const name of ['multipart', 'dicom', 'render', 'fhir']) m[name] = await import(`/viewer/js/${name}.js`);
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
"""


@pytest.fixture
def module_page(page: Any, demo: Any) -> Any:
    page.goto(f"{demo.base}/config")  # any page of the origin; modules are imported on demand
    return page


def run(page: Any, body: str, args: Any = None) -> Any:
    return page.evaluate(IMPORTS + body + "\n}", args)


def part10(transfer_syntax: str, pixels: np.ndarray, *, window: bool = True) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName = "Test^Pat"
    ds.Modality, ds.InstanceNumber = "CT", 7
    inner = Dataset()
    inner.CodeMeaning = "nested"  # a sequence the parser must skip
    ds.ProcedureCodeSequence = Sequence([inner])
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
    ds.RescaleSlope, ds.RescaleIntercept = 2, -100
    if window:
        ds.WindowCenter, ds.WindowWidth = [40, 400], [400, 1500]
    ds.PixelData = pixels.astype("<i2").tobytes()
    out = io.BytesIO()
    ds.save_as(
        out,
        implicit_vr=transfer_syntax == ImplicitVRLittleEndian,
        little_endian=True,
        enforce_file_format=True,
    )
    return out.getvalue()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_dicom_parse_and_decode(module_page: Any, syntax: str) -> None:
    pixels = (np.arange(12 * 10).reshape(12, 10) - 30).astype(np.int16)
    result = run(
        module_page,
        """
  const data = bytes(args.b64);
  const parsed = m.dicom.parseDicom(data);
  const image = await m.render.decodeFrame(data, parsed, 0);
  return {ts: parsed.transferSyntax, attrs: {...parsed.attrs, PixelData: null},
          first: Array.from(image.gray.slice(0, 3)), last: image.gray[image.gray.length - 1],
          window: image.window, size: [image.width, image.height]};
""",
        {"b64": base64.b64encode(part10(syntax, pixels)).decode()},
    )
    assert result["ts"] == syntax
    assert result["attrs"]["InstanceNumber"] == 7 and result["attrs"]["PatientName"] == "Test Pat"
    assert result["attrs"]["Modality"] == "CT" and result["size"] == [10, 12]
    assert result["first"] == [-160, -158, -156]  # (raw * 2) - 100 with signed 12-bit pixels
    assert result["last"] == (119 - 30) * 2 - 100
    assert result["window"]["center"] == 40 and result["window"]["width"] == 400


def test_unsupported_transfer_syntax_has_a_readable_message(module_page: Any) -> None:
    data = part10(ExplicitVRLittleEndian, np.zeros((4, 4), np.int16))
    marker = ExplicitVRLittleEndian.encode() + b"\0"
    data = data.replace(marker, RLELossless.encode() + b"\0" * (len(marker) - len(RLELossless)), 1)
    message = run(
        module_page,
        """
  const data = bytes(args.b64);
  try { await m.render.decodeFrame(data, m.dicom.parseDicom(data), 0); return 'decoded'; }
  catch (err) { return err.message; }
""",
        {"b64": base64.b64encode(data).decode()},
    )
    assert "RLE Lossless" in message and "cannot decode" in message


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_multipart_parser_any_chunking(module_page: Any, chunk: int) -> None:
    boundary = "b0und4ry"
    bodies = [b"first\r\n--b0und\r\n", b"", bytes(range(256)) * 40]
    wire = (
        b"preamble\r\n"
        + b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + body + b"\r\n"
            for body in bodies
        )
        + f"--{boundary}--\r\n".encode()
    )
    result = run(
        module_page,
        """
  const data = bytes(args.b64);
  const stream = new ReadableStream({ start(c) {
    for (let i = 0; i < data.length; i += args.chunk) c.enqueue(data.slice(i, i + args.chunk));
    c.close(); } });
  const out = [];
  for await (const p of m.multipart.parts(stream, m.multipart.boundaryOf('multipart/related; type="application/dicom"; boundary=' + args.boundary)))
    out.push([p.headers['content-type'], btoa(String.fromCharCode(...p.body))]);
  let truncated = null;
  const cut = new ReadableStream({ start(c) { c.enqueue(data.slice(0, data.length - 20)); c.close(); } });
  try { for await (const _ of m.multipart.parts(cut, args.boundary)) {} } catch (err) { truncated = err.message; }
  return {out, truncated};
""",
        {"b64": base64.b64encode(wire).decode(), "chunk": chunk, "boundary": boundary},
    )
    assert [base64.b64decode(b) for _, b in result["out"]] == bodies
    assert all(t == "application/dicom" for t, _ in result["out"])
    assert "incomplete" in result["truncated"]


def test_endpoint_resolution(module_page: Any) -> None:
    wado = {"resourceType": "Endpoint", "connectionType": {"code": "dicom-wado-rs"}, "status": "active"}
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "fullUrl": "https://img.example/fhir/ImagingStudy/s1",
                "resource": {
                    "resourceType": "ImagingStudy",
                    "id": "s1",
                    "endpoint": [{"reference": "Endpoint/e1"}],
                },
            },
            {
                "fullUrl": "urn:uuid:9d2b1c1e-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "ImagingStudy",
                    "id": "s2",
                    "endpoint": [{"reference": "urn:uuid:9d2b1c1e-0000-4000-8000-0000000000e2"}],
                },
            },
            {
                "resource": {
                    "resourceType": "ImagingStudy",
                    "id": "s3",
                    "endpoint": [{"reference": "#c"}],
                    "contained": [{**wado, "id": "c", "address": "https://img.example/contained"}],
                }
            },
            {
                "fullUrl": "https://img.example/fhir/Endpoint/e1",
                "search": {"mode": "include"},
                "resource": {**wado, "id": "e1", "address": "https://img.example/included"},
            },
            {
                "fullUrl": "urn:uuid:9d2b1c1e-0000-4000-8000-0000000000e2",
                "search": {"mode": "include"},
                "resource": {**wado, "id": "e2", "address": "https://img.example/uuid"},
            },
        ],
    }
    result = run(
        module_page,
        """
  return args.entry.filter((e) => e.resource.resourceType === 'ImagingStudy').map((e) => {
    const eps = m.fhir.resolveEndpoints(e.resource, args, e.fullUrl);
    return eps.filter(m.fhir.isWadoRs).map((ep) => ep.address);
  });
""",
        bundle,
    )
    assert result == [
        ["https://img.example/included"],
        ["https://img.example/uuid"],
        ["https://img.example/contained"],
    ]
