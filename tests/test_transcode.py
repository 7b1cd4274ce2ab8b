"""Transfer syntax transcoding (smart_imaging.dicom.transcode) on pydicom's real test images: every
stored syntax we can read to every syntax we can write, pixel-identical after decoding; the 406
cases; frames for WADO-RS; and memory on a large multi-frame instance."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels.decoders.base import get_decoder

from smart_imaging.dicom import frame_transcode as ft
from smart_imaging.dicom import transcode as tc
from smart_imaging.errors import BadRequest, NotAcceptable, UpstreamError

from .sample_dicom import large_multiframe, to_bytes

EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
RLE, JLS, JLS_NEAR = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS, J2K = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"
JPEG_BASELINE, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1 = (
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
)
TARGETS = [EXPLICIT, IMPLICIT, RLE, JLS, JLS_NEAR, J2K_LOSSLESS, J2K]
COMPRESSED_TARGETS = [RLE, JLS, JLS_NEAR, J2K_LOSSLESS, J2K]

# pydicom's bundled files (no download): one or more per stored syntax, color and multi-frame.
SOURCES = {
    "MR_small.dcm": "Explicit VR LE, 16-bit signed",
    "MR_small_implicit.dcm": "Implicit VR LE",
    "MR_small_bigendian.dcm": "Explicit VR Big Endian (retired)",
    "image_dfl.dcm": "Deflated Explicit VR LE",
    "ExplVR_BigEnd.dcm": "Big Endian RGB, PlanarConfiguration 1",
    "examples_rgb_color.dcm": "RGB 8-bit",
    "examples_palette.dcm": "PALETTE COLOR",
    "MR_small_RLE.dcm": "RLE",
    "SC_rgb_rle_2frame.dcm": "RLE RGB, 2 frames",
    "SC_rgb_rle_16bit_2frame.dcm": "RLE RGB 16-bit, 2 frames",
    "MR_small_jpeg_ls_lossless.dcm": "JPEG-LS lossless",
    "JPEGLSNearLossless_16.dcm": "JPEG-LS near-lossless 16-bit",
    "SC_rgb_jls_lossy_line.dcm": "JPEG-LS near-lossless RGB",
    "MR_small_jp2klossless.dcm": "JPEG 2000 lossless",
    "GDCMJ2K_TextGBR.dcm": "JPEG 2000 lossless YBR_RCT colour",
    "JPEG2000.dcm": "JPEG 2000 (lossy syntax), 16-bit",
    "693_J2KI.dcm": "JPEG 2000 irreversible",
    "J2K_pixelrep_mismatch.dcm": "JPEG 2000 whose signedness contradicts PixelRepresentation",
    "SC_rgb_jpeg_gdcm.dcm": "JPEG Lossless SV1 (.70) RGB",
    "SC_rgb_jpeg_dcmtk.dcm": "JPEG Baseline YBR_FULL",
    "SC_rgb_dcmtk_+eb+cy+np.dcm": "JPEG Baseline YBR_FULL_422",
    "examples_ybr_color.dcm": "JPEG Baseline YBR_FULL_422, 30 frames",
}
# Pairs a codec cannot take, with the reason: these must be a clear 406.
REFUSED = {
    ("examples_palette.dcm", JLS_NEAR): "PS3.5 8.2.3: no PALETTE COLOR in JPEG-LS near-lossless",
    ("JPEGLSNearLossless_16.dcm", J2K_LOSSLESS): "50x10 pixels: too small for OpenJPEG's 6 levels",
    ("JPEGLSNearLossless_16.dcm", J2K): "50x10 pixels: too small for OpenJPEG's 6 levels",
}
LOSSLESS_SOURCES = {
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "image_dfl.dcm",
    "ExplVR_BigEnd.dcm",
    "examples_rgb_color.dcm",
    "examples_palette.dcm",
    "MR_small_RLE.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
}


def path(name: str) -> str:
    found = get_testdata_file(name, download=False)
    assert found, f"{name} is not bundled with pydicom"
    return str(found)


def read(blob: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(blob))


def part10(blob: bytes, target: str) -> bytes:
    return b"".join(tc.transcode_part10(blob, target))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_pair_keeps_the_pixels(name: str, target: str) -> None:
    blob = Path(path(name)).read_bytes()
    stored = read(blob)
    reference = stored.pixel_array  # what the stored image decodes to
    if (name, target) in REFUSED:
        with pytest.raises(NotAcceptable):
            part10(blob, target)
        return
    out = read(part10(blob, target))
    assert out.file_meta.TransferSyntaxUID == target
    assert out.SOPInstanceUID == stored.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == stored.SOPInstanceUID
    assert out.get("NumberOfFrames", 1) == stored.get("NumberOfFrames", 1)
    decoded = out.pixel_array
    assert decoded.shape == reference.shape
    assert decoded.dtype == reference.dtype.newbyteorder("=")  # Big Endian sources decode as '>i2'
    assert np.array_equal(decoded, reference), f"{SOURCES[name]} -> {target} changed pixels"
    if target in COMPRESSED_TARGETS:
        frames = list(generate_frames(out.PixelData, number_of_frames=out.get("NumberOfFrames", 1)))
        assert len(frames) == int(out.get("NumberOfFrames", 1))
    recoded = target != stored.file_meta.TransferSyntaxUID
    if recoded and stored.file_meta.TransferSyntaxUID.is_compressed and stored.SamplesPerPixel == 3:
        assert out.PhotometricInterpretation == "RGB"  # YBR JPEG / J2K decode to RGB
    else:
        assert out.PhotometricInterpretation == stored.PhotometricInterpretation
    if name not in LOSSLESS_SOURCES:
        assert out.get("LossyImageCompression", "01") == "01"  # never loses the lossy mark


@pytest.mark.parametrize("target", COMPRESSED_TARGETS)
def test_lossless_round_trip_returns_the_original_bytes(target: str) -> None:
    """Native -> compressed -> native gives back the stored pixel data byte for byte."""
    blob = Path(path("MR_small.dcm")).read_bytes()
    back = read(part10(part10(blob, target), EXPLICIT))
    assert back.PixelData == read(blob).PixelData
    assert back.PatientName == read(blob).PatientName


def test_big_endian_gives_the_little_endian_twin() -> None:
    """pydicom ships the same MR image in both byte orders."""
    little = read(Path(path("MR_small.dcm")).read_bytes())
    converted = read(part10(Path(path("MR_small_bigendian.dcm")).read_bytes(), EXPLICIT))
    assert converted.PixelData == little.PixelData


def test_jpeg_lossless_process_14_decodes() -> None:
    """No .4.57 file is bundled; a Selection Value 1 stream is also a valid Process 14 stream, so the
    .70 file relabelled as .57 exercises that decoder."""
    ds = read(Path(path("SC_rgb_jpeg_gdcm.dcm")).read_bytes())
    reference = ds.pixel_array
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(JPEG_LOSSLESS)
    relabelled = to_bytes(ds)
    for target in (EXPLICIT, RLE, J2K_LOSSLESS):
        assert np.array_equal(read(part10(relabelled, target)).pixel_array, reference)


def test_multiframe_native_to_every_compressed_syntax() -> None:
    blob = large_multiframe("transcode", "TX", "Trans^Code", frames=6, size=64)
    reference = read(blob).pixel_array
    for target in COMPRESSED_TARGETS:
        out = read(part10(blob, target))
        assert np.array_equal(out.pixel_array, reference), target
        assert len(list(generate_frames(out.PixelData, number_of_frames=6))) == 6


def test_star_and_the_stored_syntax_change_nothing() -> None:
    blob = Path(path("MR_small_RLE.dcm")).read_bytes()
    assert part10(blob, "*") == blob
    assert part10(blob, RLE) == blob
    ds = read(blob)
    assert tc.transcode(ds, "*") is ds and ds.file_meta.TransferSyntaxUID == RLE


def test_dataset_in_place() -> None:
    ds = read(Path(path("SC_rgb_rle_2frame.dcm")).read_bytes())
    reference = ds.pixel_array
    assert tc.transcode(ds, J2K_LOSSLESS) is ds
    assert ds.file_meta.TransferSyntaxUID == J2K_LOSSLESS
    round_trip = read(to_bytes(ds))
    assert np.array_equal(round_trip.pixel_array, reference)
    tc.transcode(round_trip, IMPLICIT)
    assert np.array_equal(read(to_bytes(round_trip)).pixel_array, reference)


def test_no_pixel_data_is_relabelled() -> None:
    blob = Path(path("test-SR.dcm")).read_bytes()
    out = read(part10(blob, IMPLICIT))
    assert out.file_meta.TransferSyntaxUID == IMPLICIT
    assert out.ContentSequence == read(blob).ContentSequence


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("MR_small.dcm", JPEG_BASELINE),  # would be new lossy compression; no encoder anyway
        ("MR_small.dcm", JPEG_LOSSLESS_SV1),  # no well-kept JPEG Lossless encoder
        ("MR_small.dcm", "1.2.840.10008.1.2.4.201"),  # HTJ2K: decode only
        ("MR_small.dcm", "1.2.840.10008.1.2.1.99"),  # Deflated: not offered
        ("MR_small.dcm", "1.2.3.4"),  # not a transfer syntax
        ("rtdose.dcm", RLE),  # 32-bit: pydicom's RLE encoder takes 8 and 16
        ("rtdose_rle.dcm", JLS),  # JPEG-LS takes 2 to 16 bits
        ("liver_1frame.dcm", J2K_LOSSLESS),  # 1-bit
        ("SC_rgb_small_odd.dcm", J2K_LOSSLESS),  # 3x3: OpenJPEG needs larger images
        ("JPEGLSNearLossless_08.dcm", J2K_LOSSLESS),  # 45x10: likewise
    ],
)
def test_not_acceptable(name: str, target: str) -> None:
    blob = Path(path(name)).read_bytes()
    with pytest.raises(NotAcceptable) as info:
        part10(blob, target)
    assert info.value.status == 406 and info.value.message


def test_twelve_bit_jpeg_needs_the_libjpeg_plugin() -> None:
    """12-bit JPEG Extended is read only by pylibjpeg-libjpeg (GPL, not installed by default)."""
    blob = Path(path("JPEG-lossy.dcm")).read_bytes()
    if "pylibjpeg" in get_decoder(read(blob).file_meta.TransferSyntaxUID).available_plugins:
        assert np.array_equal(read(part10(blob, EXPLICIT)).pixel_array, read(blob).pixel_array)
    else:
        with pytest.raises(NotAcceptable, match="12-bit"):
            part10(blob, EXPLICIT)


def test_bad_input_answers_clearly() -> None:
    blob = Path(path("MR_small.dcm")).read_bytes()
    with pytest.raises(BadRequest):
        part10(blob, "jpeg please")
    with pytest.raises(UpstreamError):
        part10(b"not dicom at all", EXPLICIT)
    broken = read(Path(path("MR_small_RLE.dcm")).read_bytes())
    broken.PixelData = broken.PixelData[:200]  # a truncated RLE frame
    with pytest.raises(UpstreamError):
        part10(to_bytes(broken), EXPLICIT)
    unknown = read(blob)
    unknown.file_meta.TransferSyntaxUID = pydicom.uid.UID("1.2.3.4.5")
    assert not tc.can_decode("1.2.3.4.5")
    with pytest.raises(NotAcceptable):
        tc.transcode(unknown, EXPLICIT)


def test_can_transcode_matches_the_codecs() -> None:
    assert tc.can_transcode(J2K, EXPLICIT) and tc.can_transcode(EXPLICIT, JLS)
    assert tc.can_transcode(JPEG_BASELINE, "*") and tc.can_transcode(JPEG_BASELINE, JPEG_BASELINE)
    assert not tc.can_transcode(EXPLICIT, JPEG_BASELINE)
    assert not tc.can_transcode("1.2.3.4.5", EXPLICIT)


# Frames (WADO-RS .../frames/N, PS3.18 8.7.3.5.2)


@pytest.mark.parametrize(
    "name", ["MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "SC_rgb_rle_2frame.dcm"]
)
def test_compressed_frame_to_octet_stream(name: str) -> None:
    ds = read(Path(path(name)).read_bytes())
    count = int(ds.get("NumberOfFrames", 1))
    pixels = ft.PixelDescription.from_dataset(ds)
    reference = ds.pixel_array if count > 1 else ds.pixel_array[np.newaxis]
    for index, codestream in enumerate(generate_frames(ds.PixelData, number_of_frames=count)):
        frame = ft.transcode_frame(codestream, pixels, ds.file_meta.TransferSyntaxUID, EXPLICIT)
        assert frame.media_type == "application/octet-stream" and frame.transfer_syntax == EXPLICIT
        assert frame.data == reference[index].tobytes()


@pytest.mark.parametrize(
    ("target", "media_type"),
    [(RLE, "image/dicom-rle"), (JLS, "image/jls"), (J2K_LOSSLESS, "image/jp2"), (J2K, "image/jp2")],
)
def test_native_frame_to_compressed_and_back(target: str, media_type: str) -> None:
    ds = read(Path(path("examples_rgb_color.dcm")).read_bytes())
    pixels = ft.PixelDescription.from_dataset(ds)
    native = bytes(ds.PixelData)
    frame = ft.transcode_frame(native, pixels, EXPLICIT, target)
    assert (frame.media_type, frame.transfer_syntax) == (media_type, target)
    assert frame.data != native
    back = ft.transcode_frame(frame.data, pixels, target, EXPLICIT)
    assert back.data == native and back.photometric_interpretation == "RGB"


def test_frame_as_stored_is_untouched() -> None:
    ds = read(Path(path("MR_small_RLE.dcm")).read_bytes())
    codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
    pixels = ft.PixelDescription.from_dataset(ds)
    for target in ("*", RLE):
        frame = ft.transcode_frame(codestream, pixels, RLE, target)
        assert (frame.data, frame.media_type, frame.transfer_syntax) == (codestream, "image/dicom-rle", RLE)


def test_ybr_jpeg_frame_decodes_to_rgb() -> None:
    ds = read(Path(path("examples_ybr_color.dcm")).read_bytes())
    codestream = list(generate_frames(ds.PixelData, number_of_frames=30))[7]
    frame = ft.transcode_frame(codestream, ft.PixelDescription.from_dataset(ds), JPEG_BASELINE, EXPLICIT)
    assert frame.photometric_interpretation == "RGB"
    assert frame.data == ds.pixel_array[7].tobytes()


def test_frame_transfer_syntax_table() -> None:
    """PS3.18 Table 8.7.3-5 defaults, aliases, and pairs that do not belong together."""
    assert ft.frame_transfer_syntax("application/octet-stream") == EXPLICIT
    assert ft.frame_transfer_syntax("image/jp2") == J2K_LOSSLESS
    assert ft.frame_transfer_syntax("image/jls") == JLS
    assert ft.frame_transfer_syntax("image/x-jls") == JLS
    assert ft.frame_transfer_syntax("image/x-dicom-rle") == RLE
    assert ft.frame_transfer_syntax("image/jpeg") == JPEG_BASELINE
    assert ft.frame_transfer_syntax("image/jp2", J2K) == J2K
    assert ft.frame_transfer_syntax("image/jp2", "*") == "*"
    with pytest.raises(NotAcceptable):
        ft.frame_transfer_syntax("image/jp2", JLS)
    with pytest.raises(NotAcceptable):
        ft.frame_transfer_syntax("application/octet-stream", RLE)
    with pytest.raises(NotAcceptable):
        ft.frame_transfer_syntax("image/png")


# Memory: a large multi-frame instance is transcoded frame by frame.

MEMORY_PROBE = textwrap.dedent(
    """
    import sys
    from smart_imaging.dicom.transcode import transcode_part10

    def status(key):  # kB figures of this process's memory (VmHWM: peak resident set)
        line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
        return int(line.split()[1]) * 1024

    blob = open(sys.argv[1], "rb").read()
    before = status("VmRSS")
    total = sum(len(chunk) for chunk in transcode_part10(blob, sys.argv[2]))
    print(len(blob), total, status("VmHWM") - before)
    """
)


@pytest.mark.parametrize("chain", [("-", RLE), (JLS, EXPLICIT)], ids=["native-to-rle", "jpeg-ls-to-native"])
def test_large_multiframe_memory_stays_near_one_copy(chain: tuple[str, str], tmp_path: Path) -> None:
    """80 frames of 512x512x16 bits (42 MB): streaming the result needs about one more copy of the
    instance (pydicom's parsed dataset) plus a frame, not the 3-5 copies a whole-dataset
    decompress/compress/write takes. Measured in a fresh process: its peak resident set (VmHWM;
    ru_maxrss would carry the forking pytest's) over its resident set before transcoding."""
    first, target = chain
    blob = large_multiframe("memory", "MEM", "Memory^Test", frames=80, size=512)
    if first != "-":
        blob = part10(blob, first)
    source = tmp_path / "large.dcm"
    source.write_bytes(blob)
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(source), target],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    size, total, extra = (int(v) for v in done.stdout.split())
    assert total > 0.9 * 80 * 512 * 512 * 2 or target != EXPLICIT
    assert extra < 1.6 * size, f"peak grew by {extra / 1e6:.0f} MB for a {size / 1e6:.0f} MB instance"
