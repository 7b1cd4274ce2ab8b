"""One frame in another transfer syntax, for WADO-RS ``/frames`` (PS3.18 8.7.3.5.2, Table
8.7.3-5). Pure: pydicom and its codec plugins only.

A frame (native bytes, or one compressed codestream) is wrapped in a one-frame dataset with the
Image Pixel attributes of its instance (:class:`PixelDescription`) and re-encoded by
``transcode.prepare``, so frames and whole instances share one set of rules: lossless targets
only, ``*`` keeps what is stored, NotAcceptable (406) when a codec cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID

from ..errors import NotAcceptable, UpstreamError
from .media import EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, FRAME_MEDIA_TYPES, frame_media_type
from .transcode import (
    ANY_TRANSFER_SYNTAX,
    JPEG_2000_LOSSLESS,
    JPEG_LS_LOSSLESS,
    NATIVE_SYNTAXES,
    NATIVE_TARGETS,
    RLE_LOSSLESS,
    prepare,
)

# PS3.18 Table 8.7.3-5: the transfer syntax a frame media type means when none is named.
DEFAULT_FRAME_SYNTAX = {
    "application/octet-stream": EXPLICIT_VR_LITTLE_ENDIAN,
    "image/jpeg": "1.2.840.10008.1.2.4.50",
    "image/dicom-rle": RLE_LOSSLESS,
    "image/jls": JPEG_LS_LOSSLESS,
    "image/jp2": JPEG_2000_LOSSLESS,
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/jphc": "1.2.840.10008.1.2.4.201",
}
_MEDIA_ALIASES = {"image/x-dicom-rle": "image/dicom-rle", "image/x-jls": "image/jls"}


@dataclass(frozen=True)
class PixelDescription:
    """The Image Pixel attributes (PS3.3 C.7.6.3) that one frame's bytes need to be understood."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric_interpretation: str
    planar_configuration: int = 0

    @classmethod
    def from_dataset(cls, ds: Dataset) -> PixelDescription:
        try:
            return cls(
                int(ds.Rows),
                int(ds.Columns),
                int(ds.get("SamplesPerPixel", 1)),
                int(ds.BitsAllocated),
                int(ds.get("BitsStored", ds.BitsAllocated)),
                int(ds.get("PixelRepresentation", 0)),
                str(ds.get("PhotometricInterpretation", "MONOCHROME2")),
                int(ds.get("PlanarConfiguration", 0) or 0),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise UpstreamError("the stored instance lacks Image Pixel attributes") from exc


@dataclass(frozen=True)
class Frame:
    """One frame for WADO-RS (PS3.18 8.7.3.5.2): its bytes, syntax and media type."""

    data: bytes
    transfer_syntax: str
    media_type: str
    photometric_interpretation: str  # may differ from the stored one (YBR JPEG decodes to RGB)


def transcode_frame(frame: bytes, pixels: PixelDescription, source: str, target: str) -> Frame:
    """One frame (native bytes or one compressed codestream) in ``target`` (``*``: as stored)."""
    chosen = source if target == ANY_TRANSFER_SYNTAX else target
    if chosen == source or (
        source in NATIVE_SYNTAXES - {EXPLICIT_VR_BIG_ENDIAN} and chosen in NATIVE_TARGETS
    ):
        return Frame(frame, chosen, frame_media_type(chosen), pixels.photometric_interpretation)
    ds = _frame_dataset(frame, pixels, source)
    frames, _ = prepare(ds, chosen)
    data = b"".join(frames.chunks)
    return Frame(data, chosen, frame_media_type(chosen), str(ds.PhotometricInterpretation))


def frame_transfer_syntax(media_type: str, transfer_syntax: str | None = None) -> str:
    """The transfer syntax a frame Accept range asks for (PS3.18 Table 8.7.3-5): the media type's
    default when none is named, ``*`` kept; NotAcceptable for a syntax of another media type."""
    media = _MEDIA_ALIASES.get(media_type.lower(), media_type.lower())
    if media not in DEFAULT_FRAME_SYNTAX:
        raise NotAcceptable(f"{media_type} is not a media type for frames")
    if not transfer_syntax:
        return DEFAULT_FRAME_SYNTAX[media]
    if transfer_syntax == ANY_TRANSFER_SYNTAX:
        return transfer_syntax
    if media == "application/octet-stream":
        belongs = transfer_syntax in NATIVE_TARGETS
    else:
        belongs = FRAME_MEDIA_TYPES.get(transfer_syntax) == media
    if not belongs:
        raise NotAcceptable(f"transfer syntax {transfer_syntax} does not go with {media}")
    return transfer_syntax


def _frame_dataset(frame: bytes, pixels: PixelDescription, source: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(source)
    ds.Rows, ds.Columns, ds.NumberOfFrames = pixels.rows, pixels.columns, 1
    ds.SamplesPerPixel = pixels.samples_per_pixel
    ds.BitsAllocated, ds.BitsStored = pixels.bits_allocated, pixels.bits_stored
    ds.HighBit, ds.PixelRepresentation = pixels.bits_stored - 1, pixels.pixel_representation
    ds.PhotometricInterpretation = pixels.photometric_interpretation
    if pixels.samples_per_pixel > 1:
        ds.PlanarConfiguration = pixels.planar_configuration
    compressed = UID(source).is_compressed
    ds.PixelData = encapsulate([frame]) if compressed else frame
    ds["PixelData"].VR = "OB" if compressed or pixels.bits_allocated <= 8 else "OW"
    ds["PixelData"].is_undefined_length = compressed
    return ds
