"""Media types for WADO-RS payloads and ``Accept`` negotiation (PS3.18 8.7.3). Pure.

``parse_accept`` reads an Accept value leniently into media ranges; the ``multipart/related``
wrapper is unwrapped so callers see the part type (``application/dicom``, ``image/jpeg``...)
with its ``transfer-syntax`` parameter. ``normalize`` cleans an Accept value to forward to an
archive: clients send ``type=application/dicom`` quoted or not, some archives accept only one
form, so the quoted form (valid per RFC 7231 everywhere) goes out. Only visible ASCII, space
and tab go out (RFC 7230 3.2, obs-text aside): a non-ASCII value (``transfer-syntax=é``) is
refused with 400 rather than forwarded; malformed ranges and parameters (control characters
included) are dropped as before.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pydicom.uid import UID

from ..errors import BadRequest

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
JPEG_BASELINE_8BIT = "1.2.840.10008.1.2.4.50"

NATIVE_TRANSFER_SYNTAXES = frozenset(
    {
        IMPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_LITTLE_ENDIAN,
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_BIG_ENDIAN,
    }
)

# PS3.18 Table 8.7.3-5: media types of compressed bulk data (frames).
FRAME_MEDIA_TYPES: dict[str, str] = {
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
}
_ALIASES = {"image/x-dicom-rle": "image/dicom-rle", "image/x-jls": "image/jls"}


@dataclass(frozen=True)
class MediaRange:
    """One Accept entry: ``type`` is the part type, lower case (``*/*`` allowed)."""

    type: str
    transfer_syntax: str | None = None  # None: not given; "*": any
    multipart: bool = False
    q: float = 1.0

    def matches(self, media_type: str) -> bool:
        wanted = _ALIASES.get(self.type, self.type)
        if wanted == "*/*":
            return True
        major, _, minor = wanted.partition("/")
        if minor == "*":
            return media_type.startswith(major + "/")
        return wanted == _ALIASES.get(media_type, media_type)


def parse_accept(accept: str | None) -> list[MediaRange]:
    """Media ranges of an Accept value, best first; empty for a missing or empty header."""
    if not accept:
        return []
    ranges: list[MediaRange] = []
    for raw in split_unquoted(accept, ","):
        parsed = _parse_range(raw)
        if parsed is not None and parsed.q > 0:
            ranges.append(parsed)
    return sorted(ranges, key=lambda r: -r.q)


def frame_media_type(transfer_syntax: str) -> str:
    """The media type of one frame stored in ``transfer_syntax``."""
    if transfer_syntax in NATIVE_TRANSFER_SYNTAXES:
        return "application/octet-stream"
    return FRAME_MEDIA_TYPES.get(transfer_syntax, "application/octet-stream")


def syntax_name(transfer_syntax: str) -> str:
    """``"JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)"``, for messages."""
    name = UID(transfer_syntax).name if transfer_syntax.isascii() and transfer_syntax.isprintable() else ""
    return f"{name} ({transfer_syntax})" if name and name != transfer_syntax else transfer_syntax


def _parse_range(text: str) -> MediaRange | None:
    pieces = [p.strip() for p in split_unquoted(text, ";")]
    if not pieces or "/" not in pieces[0]:
        return None
    media = pieces[0].lower()
    params: dict[str, str] = {}
    for raw in pieces[1:]:
        name, sep, value = raw.partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"').strip()
    q = _quality(params.get("q"))
    if media == "multipart/related":
        part = params.get("type", "application/octet-stream").lower()
        return MediaRange(part, params.get("transfer-syntax"), True, q)
    return MediaRange(media, params.get("transfer-syntax"), False, q)


def _quality(value: str | None) -> float:
    if value is None:
        return 1.0
    try:
        q = float(value)
    except ValueError:
        return 1.0
    return min(1.0, max(0.0, q)) if math.isfinite(q) else 1.0


def split_unquoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes; parts stripped, empty ones dropped."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return [p for p in (s.strip() for s in out) if p]


MAX_ACCEPT = 2048
_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+\-*/]+", re.ASCII)
_VISIBLE = re.compile(r"[\t\x20-\x7e]*", re.ASCII)
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?", re.ASCII)  # RFC 7231 5.3.1


def normalize(accept: str | None, default: str) -> str:
    """Return a cleaned Accept value, quoting parameter values; ``default`` when absent.

    Raises BadRequest for a value that is not ASCII (``transfer-syntax=é``).
    """
    if not accept or not accept.strip():
        return default
    if len(accept) > MAX_ACCEPT:
        return default
    if not accept.isascii():
        raise BadRequest("the Accept header must be ASCII (RFC 7230 section 3.2)")
    ranges = [_normalize_range(r) for r in split_unquoted(accept, ",")]
    kept = [r for r in ranges if r]
    return ", ".join(kept) if kept else default


def _normalize_range(text: str) -> str | None:
    pieces = [p.strip() for p in split_unquoted(text, ";")]
    media = pieces[0].lower() if pieces else ""
    if not _TOKEN.fullmatch(media) or "/" not in media:
        return None
    params: list[str] = []
    for raw in pieces[1:]:
        name, sep, value = raw.partition("=")
        name = name.strip().lower()
        value = value.strip().strip('"')
        if not sep or not _TOKEN.fullmatch(name) or not _VISIBLE.fullmatch(value):
            continue
        if '"' in value or "\\" in value or (name == "q" and not _QVALUE.fullmatch(value)):
            continue
        params.append(f"{name}={value}" if name == "q" else f'{name}="{value}"')
    return "; ".join([media, *params])
