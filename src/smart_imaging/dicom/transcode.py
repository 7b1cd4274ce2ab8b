"""Transfer syntax transcoding for WADO-RS negotiation (PS3.18 8.7.3.5). Pure: pydicom and its codec
plugins only, no I/O.

What can be done (with python-gdcm, pylibjpeg-openjpeg, pylibjpeg-rle and pyjpegls installed):

- from any stored syntax pydicom can decode: the native ones, Deflated, retired Big Endian, JPEG
  Baseline/Extended (12-bit only with pylibjpeg-libjpeg)/Lossless, JPEG-LS, JPEG 2000, HTJ2K, RLE;
- to Explicit or Implicit VR Little Endian, or losslessly to RLE Lossless, JPEG-LS Lossless and
  JPEG 2000 Lossless, and to JPEG-LS Near-Lossless and JPEG 2000 in their lossless modes (NEAR=0,
  reversible wavelet), which those syntaxes allow (PS3.5 8.2.3, 8.2.4);
- ``*`` keeps the stored syntax (PS3.18 8.7.3.5.2).

No well-kept encoder exists here for JPEG Baseline/Extended/Lossless or HTJ2K, and new lossy
compression is never made up: asking for those (unless stored so) is ``NotAcceptable`` (406), as
is an image a codec cannot take (JPEG-LS above 16 bits, JPEG 2000 below 32 pixels a side...).

One frame alone (``/frames``) is ``frame_transcode``'s, on the same rules (:func:`prepare`).

Pixel data moves frame by frame: ``transcode_part10`` checks everything and encodes the first frame
before it returns, then yields the file in chunks, one frame at a time, so memory holds the input
and about one frame, not a second copy of a large multi-frame instance. The SOP Instance UID is
kept: a transfer syntax is an encoding of the same instance, and clients match by UID. Images
decoded from YBR JPEG and JPEG 2000 come out as RGB (``PhotometricInterpretation`` updated).
"""

from __future__ import annotations

import io
import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.encoders.base import get_encoder
from pydicom.uid import UID

from ..errors import BadRequest, NotAcceptable, UpstreamError
from .media import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    syntax_name,
)

ANY_TRANSFER_SYNTAX = "*"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
_LOSSY_ONLY = frozenset({"1.2.840.10008.1.2.4.50", JPEG_EXTENDED})

NATIVE_TARGETS = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
NATIVE_SYNTAXES = frozenset({*NATIVE_TARGETS, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN})
# Target syntax -> (encoder syntax, encoder options): the lossless mode of each codec.
_ENCODINGS: dict[str, tuple[str, dict[str, Any]]] = {
    RLE_LOSSLESS: (RLE_LOSSLESS, {}),
    JPEG_LS_LOSSLESS: (JPEG_LS_LOSSLESS, {}),
    JPEG_LS_NEAR_LOSSLESS: (JPEG_LS_NEAR_LOSSLESS, {"jls_error": 0}),
    JPEG_2000_LOSSLESS: (JPEG_2000_LOSSLESS, {}),
    JPEG_2000: (JPEG_2000_LOSSLESS, {}),
}
# pydicom tries plugins in registration order; pylibjpeg-rle encodes RLE fastest.
_PREFERRED_ENCODER = {RLE_LOSSLESS: "pylibjpeg"}
_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_PIXEL_DATA = 0x7FE00010
_ITEM, _SEQUENCE_END = b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def can_decode(syntax: str) -> bool:
    """Whether pixel data stored in ``syntax`` can be read here (natively or by a codec plugin)."""
    if syntax in NATIVE_SYNTAXES:
        return True
    try:
        return bool(get_decoder(UID(syntax)).is_available)
    except NotImplementedError:
        return False


def can_encode(syntax: str) -> bool:
    """Whether pixel data can be written in ``syntax`` here (without lossy compression)."""
    if syntax in NATIVE_TARGETS:
        return True
    encoding = _ENCODINGS.get(syntax)
    return encoding is not None and bool(get_encoder(UID(encoding[0])).is_available)


def can_transcode(source: str, target: str) -> bool:
    """Whether an instance stored in ``source`` can be delivered in ``target`` (``*``: as stored).
    Per-image limits (JPEG-LS takes 2 to 16 bits...) can still refuse one in ``transcode``."""
    return target in (ANY_TRANSFER_SYNTAX, source) or (can_decode(source) and can_encode(target))


def stored_transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        raise UpstreamError("the stored instance names no transfer syntax (0002,0010)")
    return str(syntax)


def transcode_part10(source: bytes | Path, target: str) -> Iterator[bytes]:
    """The Part-10 file ``source`` (its bytes, or its path: then it is read once, into the dataset
    only) in ``target``, as chunks to stream; the file itself for ``*`` or the stored syntax.
    Raises NotAcceptable (406) or UpstreamError (502, stored data unreadable) before returning; a
    frame that fails to decode later raises UpstreamError mid-stream."""
    try:
        ds = pydicom.dcmread(io.BytesIO(source) if isinstance(source, bytes) else source)
    except Exception as exc:  # pydicom raises many kinds on broken files
        raise UpstreamError("the stored instance is not readable DICOM") from exc
    if target in (ANY_TRANSFER_SYNTAX, stored_transfer_syntax(ds)):
        return iter([source if isinstance(source, bytes) else source.read_bytes()])
    frames, encapsulated = prepare(ds, target)
    head = Dataset({elem.tag: elem for elem in ds if elem.tag < _PIXEL_DATA})
    head.file_meta, head.preamble = ds.file_meta, getattr(ds, "preamble", None)
    after = Dataset({elem.tag: elem for elem in ds if elem.tag > _PIXEL_DATA})
    out = io.BytesIO()
    pydicom.dcmwrite(out, head, enforce_file_format=True)
    if "PixelData" not in ds:
        return iter([out.getvalue(), _write_plain(after, target)])
    element = _pixel_header(target, ds, frames, encapsulated)
    chunks = _encapsulated(frames.chunks) if encapsulated else _native_padding(frames.chunks, frames.length)
    return itertools.chain([out.getvalue(), element], chunks, [_write_plain(after, target)])


def transcode(ds: Dataset, target: str) -> Dataset:
    """``ds`` re-encoded in ``target``, in place (a copy would double a large instance); returns
    ``ds``. Raises NotAcceptable (406) or UpstreamError (502)."""
    if target in (ANY_TRANSFER_SYNTAX, stored_transfer_syntax(ds)):
        return ds
    frames, encapsulated = prepare(ds, target)
    if "PixelData" in ds:
        chunks = list(frames.chunks)
        ds.PixelData = encapsulate(chunks) if encapsulated else b"".join(chunks) + b"\0" * (frames.length % 2)
        ds["PixelData"].VR = "OB" if encapsulated or int(ds.BitsAllocated) <= 8 else "OW"
        ds["PixelData"].is_undefined_length = encapsulated
    return ds


@dataclass
class _Frames:
    chunks: Iterator[bytes]  # native frames, or one codestream per frame
    length: int = 0  # total bytes of native pixel data (0 when encapsulated)


def prepare(ds: Dataset, target: str) -> tuple[_Frames, bool]:
    """Check the pair, update ``ds``'s attributes for ``target`` and return its pixel data as an
    iterator of frames (the first already done, so that refusals happen here)."""
    source = stored_transfer_syntax(ds)
    _require(source, target)
    encapsulated = target in _ENCODINGS
    if "PixelData" not in ds:
        if encapsulated and ("FloatPixelData" in ds or "DoubleFloatPixelData" in ds):
            raise NotAcceptable(f"float pixel data cannot be encoded as {_name(target)}")
        ds.file_meta.TransferSyntaxUID = UID(target)
        return _Frames(iter([])), encapsulated
    native = (
        _native_frames(ds, source, encapsulated) if source in NATIVE_SYNTAXES else _decoded_frames(ds, source)
    )
    ds.file_meta.TransferSyntaxUID = UID(target)
    if not encapsulated:
        return native, False
    return _Frames(_ahead(_encoded_frames(ds, native.chunks, target))), True


def _native_frames(ds: Dataset, source: str, to_encode: bool) -> _Frames:
    """Stored native frames as little endian bytes; interleaved (PlanarConfiguration 0) when they
    go to an encoder, which takes nothing else (PS3.5 8.2)."""
    data: bytes = ds.PixelData
    if source == EXPLICIT_VR_BIG_ENDIAN:
        _swap_other_words(ds)
    bits = int(ds.BitsAllocated)
    planar = int(ds.get("SamplesPerPixel", 1)) > 1 and int(ds.get("PlanarConfiguration", 0) or 0) == 1
    if not to_encode and (source != EXPLICIT_VR_BIG_ENDIAN or bits <= 8):
        return _Frames(iter([data]), len(data))
    if to_encode:
        ds.PlanarConfiguration = 0
    size = _frame_size(ds)
    count = len(data) // size if size else 0
    swap = source == EXPLICIT_VR_BIG_ENDIAN and bits > 8

    def frames() -> Iterator[bytes]:
        for index in range(count):
            frame = data[index * size : (index + 1) * size]
            if swap:
                frame = _swap(frame, bits // 8)
            yield _interleave(frame, ds, bits) if to_encode and planar else frame

    return _Frames(frames(), count * size)


def _decoded_frames(ds: Dataset, source: str) -> _Frames:
    """Compressed frames decoded one by one; the first with each plugin until one succeeds, since
    plugins differ in what they tolerate (e.g. J2K signedness contradicting PixelRepresentation)."""
    decoder = get_decoder(UID(source))
    twelve_bit = source == JPEG_EXTENDED and int(ds.get("BitsStored", 8)) > 8
    if twelve_bit and "pylibjpeg" not in decoder.available_plugins:  # only pylibjpeg-libjpeg can
        raise NotAcceptable(f"12-bit {_name(source)} images cannot be decoded here")
    failure: Exception | None = None
    for plugin in ("", *decoder.available_plugins):
        frames = decoder.iter_array(ds, decoding_plugin=plugin, as_rgb=True)
        try:
            first, pixel = next(frames)
            break
        except StopIteration:
            raise UpstreamError(f"the stored {_name(source)} pixel data holds no frame") from None
        except Exception as exc:  # noqa: BLE001 - codec plugins raise what they like; try the next
            failure = failure or exc
    else:
        raise UpstreamError(f"the stored {_name(source)} pixel data could not be decoded") from failure
    ds.PhotometricInterpretation = pixel["photometric_interpretation"]
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        ds.PlanarConfiguration = pixel["planar_configuration"]
    if source in _LOSSY_ONLY and "LossyImageCompression" not in ds:
        ds.LossyImageCompression = "01"  # PS3.3 C.7.6.1.1.5: once lossy, always marked lossy
    count = int(ds.get("NumberOfFrames", 1) or 1)

    def chunks() -> Iterator[bytes]:
        yield first.tobytes()
        done = 1
        for array, _ in frames:
            done += 1
            if done <= count:
                yield array.tobytes()
        if done < count:
            raise UpstreamError(f"the stored pixel data holds {done} of {count} frames")

    return _Frames(_guarded(chunks(), source), count * first.nbytes)


def _encoded_frames(ds: Dataset, native: Iterator[bytes], target: str) -> Iterator[bytes]:
    syntax, options = _ENCODINGS[target]
    encoder = get_encoder(UID(syntax))
    plugin = _PREFERRED_ENCODER.get(syntax, "")
    if plugin not in encoder.available_plugins:
        plugin = ""
    opts = {**_pixel_options(ds), **options}
    for frame in native:
        try:
            yield encoder.encode(frame, encoding_plugin=plugin, **opts)
        except (ValueError, RuntimeError, NotImplementedError, TypeError) as exc:
            what = f"{ds.get('PhotometricInterpretation', '?')} {ds.get('BitsStored', '?')}-bit"
            raise NotAcceptable(f"this image ({what}) cannot be encoded as {_name(target)}") from exc


def _pixel_options(ds: Dataset) -> dict[str, Any]:
    return {
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "number_of_frames": 1,
        "samples_per_pixel": int(ds.get("SamplesPerPixel", 1)),
        "bits_allocated": int(ds.BitsAllocated),
        "bits_stored": int(ds.get("BitsStored", ds.BitsAllocated)),
        "pixel_representation": int(ds.get("PixelRepresentation", 0)),
        "photometric_interpretation": str(ds.PhotometricInterpretation),
        "planar_configuration": 0,
    }


def _ahead(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` with its first item computed now (so errors raise here, not mid-stream)."""
    try:
        first = next(chunks)
    except StopIteration:
        return iter([])
    return itertools.chain([first], chunks)


def _guarded(chunks: Iterator[bytes], source: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except (NotAcceptable, UpstreamError):
        raise
    except Exception as exc:  # a later frame is corrupt
        raise UpstreamError(f"the stored {_name(source)} pixel data could not be decoded") from exc


def _pixel_header(target: str, ds: Dataset, frames: _Frames, encapsulated: bool) -> bytes:
    """The (7FE0,0010) element header (PS3.5 7.1, A.4): undefined length when encapsulated."""
    if encapsulated:
        return struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    length = frames.length + frames.length % 2
    if target == IMPLICIT_VR_LITTLE_ENDIAN:
        return struct.pack("<HHI", 0x7FE0, 0x0010, length)
    vr = b"OB" if int(ds.BitsAllocated) <= 8 else b"OW"
    return struct.pack("<HH2sHI", 0x7FE0, 0x0010, vr, 0, length)


def _encapsulated(codestreams: Iterator[bytes]) -> Iterator[bytes]:
    """PS3.5 A.4: an empty Basic Offset Table item, one item per frame, then the delimiter."""
    yield _ITEM + b"\0\0\0\0"
    for stream in codestreams:
        padded = len(stream) + len(stream) % 2
        yield _ITEM + struct.pack("<I", padded) + stream + b"\0" * (padded - len(stream))
    yield _SEQUENCE_END


def _native_padding(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    yield from chunks
    if length % 2:
        yield b"\0"


def _write_plain(ds: Dataset, target: str) -> bytes:
    if not len(ds):
        return b""
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, target == IMPLICIT_VR_LITTLE_ENDIAN
    write_dataset(out, ds)
    return bytes(out.getvalue())


def _require(source: str, target: str) -> None:
    if not target or target.strip(".0123456789"):
        raise BadRequest("transfer-syntax must be a UID or *")
    if not can_decode(source):
        raise NotAcceptable(f"images stored as {_name(source)} cannot be transcoded here")
    if not can_encode(target):
        raise NotAcceptable(f"images cannot be delivered as {_name(target)} (stored as {_name(source)})")


def _frame_size(ds: Dataset) -> int:
    pixels = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
    return pixels * int(ds.BitsAllocated) // 8


def _interleave(frame: bytes, ds: Dataset, bits: int) -> bytes:
    samples, rows, columns = int(ds.SamplesPerPixel), int(ds.Rows), int(ds.Columns)
    planes = np.frombuffer(frame, dtype=f"<u{bits // 8}").reshape(samples, rows, columns)
    return np.ascontiguousarray(planes.transpose(1, 2, 0)).tobytes()


def _swap_other_words(ds: Dataset) -> None:
    """Big Endian to Little: pydicom converts typed values when writing, but not the words of
    OW/OF/OL/OD/OV elements (PS3.5 7.3); pixel data is swapped frame by frame elsewhere."""
    for elem in ds.iterall():
        if elem.tag != _PIXEL_DATA and elem.VR in _SWAP_WIDTH and isinstance(elem.value, bytes):
            elem.value = _swap(elem.value, _SWAP_WIDTH[elem.VR])


def _swap(data: bytes, width: int) -> bytes:
    usable = len(data) - len(data) % width
    words = np.frombuffer(data, dtype=f">u{width}", count=usable // width)
    return words.astype(f"<u{width}").tobytes() + data[usable:]


def _name(syntax: str) -> str:
    return syntax_name(syntax)
