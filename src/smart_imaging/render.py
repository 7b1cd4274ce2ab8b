"""Rendered images of DICOM frames (PS3.18 8.3.5 and 8.7.4). Pure: dataset in, image bytes out.

Any source that holds a pydicom ``Dataset`` (with pixel data) can use this: decode one frame,
apply the Modality LUT (RescaleSlope/Intercept), window it (the ``window`` query parameter, else
the file's first WindowCenter/WindowWidth, else the frame's range), and encode as JPEG or PNG.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut

from .dicom.media import parse_accept
from .errors import BadRequest, NotAcceptable

RENDERED_TYPES = ("image/jpeg", "image/png")
DEFAULT_RENDERED_TYPE = "image/jpeg"  # PS3.18 8.7.4: rendered resources default to JPEG
THUMBNAIL_VIEWPORT = (128, 128)
WINDOW_FUNCTIONS = ("linear", "linear-exact", "sigmoid")


@dataclass(frozen=True)
class Window:
    """VOI LUT window (PS3.3 C.11.2.1.2)."""

    center: float
    width: float
    function: str = "linear"


@dataclass(frozen=True)
class RenderOptions:
    media_type: str = DEFAULT_RENDERED_TYPE
    window: Window | None = None
    quality: int = 90
    viewport: tuple[int, int] | None = None


def choose_media_type(accept: str | None) -> str:
    """JPEG or PNG per the Accept header; ``NotAcceptable`` when it allows neither."""
    ranges = parse_accept(accept)
    if not ranges:
        return DEFAULT_RENDERED_TYPE
    for media_range in ranges:
        for media_type in RENDERED_TYPES:
            if media_range.matches(media_type):
                return media_type
    raise NotAcceptable("rendered images are available as image/jpeg or image/png")


def parse_options(
    params: tuple[tuple[str, str], ...], media_type: str, viewport: tuple[int, int] | None = None
) -> RenderOptions:
    """Read ``window``, ``quality`` and ``viewport`` query parameters (PS3.18 8.3.5.1)."""
    window: Window | None = None
    quality = 90
    for name, value in params:
        if name == "window":
            window = _parse_window(value)
        elif name == "quality":
            quality = _parse_int(value, "quality", 1, 100)
        elif name == "viewport":
            viewport = _parse_viewport(value)
    return RenderOptions(media_type, window, quality, viewport)


def render_frame(ds: Dataset, index: int, options: RenderOptions) -> bytes:
    """Frame ``index`` (0-based) of ``ds`` as image bytes of ``options.media_type``."""
    image = Image.fromarray(display_pixels(ds, index, options.window))
    if options.viewport is not None:
        image.thumbnail(options.viewport)
    out = io.BytesIO()
    if options.media_type == "image/png":
        image.save(out, format="PNG")
    else:
        image.save(out, format="JPEG", quality=options.quality)
    return out.getvalue()


def display_pixels(ds: Dataset, index: int, window: Window | None = None) -> NDArray[np.uint8]:
    """8-bit display values of one frame: grey (rows, cols) or RGB (rows, cols, 3)."""
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
    frame, _ = decoder.as_array(ds, index=index)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        return _to_uint8(apply_color_lut(frame, ds), int(ds.get("BitsStored", 8)))
    if frame.ndim == 3:
        return _to_uint8(frame, int(ds.get("BitsStored", 8)))
    values = apply_modality_lut(frame, ds).astype(np.float64)
    chosen = window or file_window(ds) or _range_window(values)
    shown = apply_window(values, chosen)
    if photometric == "MONOCHROME1":
        shown = 255.0 - shown
    return np.rint(shown).astype(np.uint8)


def apply_window(values: NDArray[np.float64], window: Window) -> NDArray[np.float64]:
    """Map modality values to 0..255 with a VOI LUT function (PS3.3 C.11.2.1.2.1 and .3)."""
    c, w = window.center, max(window.width, 1.0)
    if window.function == "sigmoid":
        return 255.0 / (1.0 + np.exp(-4.0 * (values - c) / w))
    if window.function == "linear-exact":
        return np.clip(((values - c) / w + 0.5) * 255.0, 0.0, 255.0)
    if w <= 1.0:
        return np.where(values < c - 0.5, 0.0, 255.0)
    return np.clip(((values - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0, 0.0, 255.0)


def file_window(ds: Dataset) -> Window | None:
    """The first WindowCenter/WindowWidth pair of the file, if any."""
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR")).lower().replace("_", "-")
    return Window(center, width, function if function in WINDOW_FUNCTIONS else "linear")


def _range_window(values: NDArray[np.float64]) -> Window:
    low, high = float(values.min()), float(values.max())
    return Window((low + high) / 2.0, max(high - low, 1.0), "linear-exact")


def _to_uint8(frame: NDArray[np.generic], bits_stored: int) -> NDArray[np.uint8]:
    if frame.dtype == np.uint8:
        return frame.astype(np.uint8)
    scale = 255.0 / float((1 << max(bits_stored, 1)) - 1)
    return np.clip(np.rint(frame.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def _first(value: object) -> float | None:
    if isinstance(value, (MultiValue, list, tuple)):
        value = value[0] if len(value) else None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _parse_window(value: str) -> Window:
    parts = [p.strip() for p in value.split(",")]
    if len(parts) not in (2, 3):
        raise BadRequest("window must be center,width[,function]")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise BadRequest("window center and width must be numbers") from exc
    function = parts[2].lower() if len(parts) == 3 else "linear"
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise BadRequest("window width must be a positive number")
    if function not in WINDOW_FUNCTIONS:
        raise BadRequest("window function must be linear, linear-exact or sigmoid")
    return Window(center, width, function)


def _parse_viewport(value: str) -> tuple[int, int]:
    parts = value.split(",")
    if len(parts) < 2:
        raise BadRequest("viewport must be width,height")
    return (_parse_int(parts[0], "viewport width", 1, 4096), _parse_int(parts[1], "viewport height", 1, 4096))


def _parse_int(value: str, what: str, low: int, high: int) -> int:
    try:
        number = int(value.strip())
    except ValueError as exc:
        raise BadRequest(f"{what} must be an integer") from exc
    if not low <= number <= high:
        raise BadRequest(f"{what} must be between {low} and {high}")
    return number
