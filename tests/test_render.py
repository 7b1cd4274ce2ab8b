"""Pure rendering (render.py) and WADO-RS media negotiation helpers (dicom/media.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from smart_imaging.dicom.media import frame_media_type, parse_accept
from smart_imaging.errors import BadRequest, NotAcceptable
from smart_imaging.render import (
    RenderOptions,
    Window,
    apply_window,
    choose_media_type,
    display_pixels,
    parse_options,
    render_frame,
)


def ramp(photometric: str = "MONOCHROME2") -> Dataset:
    """A 4x4 16-bit image 0..1500 with CT rescale (-1000 HU .. 500 HU) and a 0/400 window."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1000
    ds.WindowCenter, ds.WindowWidth = 0, 400
    ds.PixelData = np.linspace(0, 1500, 16).astype("<u2").tobytes()
    return ds


def test_file_window_and_modality_lut_are_applied() -> None:
    shown = display_pixels(ramp(), 0)
    assert shown[0, 0] == 0 and shown[-1, -1] == 255  # -1000 HU black, 500 HU white
    hu = np.linspace(0, 1500, 16) - 1000
    inside = (hu > -200) & (hu < 200)
    assert np.all((shown.ravel()[inside] > 0) & (shown.ravel()[inside] < 255))


def test_window_parameter_overrides_and_monochrome1_inverts() -> None:
    wide = display_pixels(ramp(), 0, Window(-250, 1500, "linear-exact"))
    assert wide.ravel().tolist() == sorted(wide.ravel().tolist()) and wide.min() == 0
    inverted = display_pixels(ramp("MONOCHROME1"), 0)
    assert inverted[0, 0] == 255 and inverted[-1, -1] == 0


def test_window_functions_follow_ps3_3() -> None:
    values = np.array([-1000.0, 39.5, 40.0, 1000.0])
    linear = apply_window(values, Window(40, 400))
    assert linear[0] == 0 and linear[-1] == 255 and 126 < linear[2] < 129
    sigmoid = apply_window(np.array([40.0]), Window(40, 400, "sigmoid"))
    assert sigmoid[0] == pytest.approx(127.5)


def test_render_png_and_jpeg_with_viewport() -> None:
    png = render_frame(ramp(), 0, RenderOptions("image/png"))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    jpeg = render_frame(ramp(), 0, RenderOptions("image/jpeg", viewport=(2, 2)))
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (2, 2)


def test_accept_and_parameters() -> None:
    assert choose_media_type(None) == "image/jpeg"
    assert choose_media_type("image/png") == "image/png"
    assert choose_media_type("image/webp, image/*;q=0.5") == "image/jpeg"
    with pytest.raises(NotAcceptable):
        choose_media_type("image/gif")
    options = parse_options((("window", "40,400"), ("quality", "70"), ("viewport", "64,32")), "image/png")
    assert options == RenderOptions("image/png", Window(40, 400), 70, (64, 32))
    for bad in (
        ("window", "40"),
        ("window", "40,-1"),
        ("window", "1,2,cubic"),
        ("quality", "0"),
        ("viewport", "big"),
    ):
        with pytest.raises(BadRequest):
            parse_options((bad,), "image/png")


def test_parse_accept_unwraps_multipart() -> None:
    ranges = parse_accept(
        'multipart/related; type="application/dicom"; transfer-syntax=*, '
        "application/dicom+json;q=0.5, garbage"
    )
    assert [(r.type, r.transfer_syntax, r.multipart) for r in ranges] == [
        ("application/dicom", "*", True),
        ("application/dicom+json", None, False),
    ]
    assert parse_accept("multipart/related; type=image/x-jls")[0].matches("image/jls")
    assert frame_media_type("1.2.840.10008.1.2.4.50") == "image/jpeg"
    assert frame_media_type("1.2.840.10008.1.2.1") == "application/octet-stream"
