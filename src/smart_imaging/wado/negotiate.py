"""Accept negotiation for WADO-RS (PS3.18 8.7.3), the same for every image source. Pure.

Instances (PS3.18 8.7.3.5): the client names the transfer syntaxes it takes as
``application/dicom``; :func:`instance_syntaxes` reads them, :meth:`InstanceSyntaxes.choose`
picks one per instance. ``transfer-syntax=*``, or no ``transfer-syntax`` parameter at all, keeps
what is stored (PS3.18 defaults to Explicit VR Little Endian there; sending what is stored is what
every client we know expects, and no pixel data is ever re-encoded unasked). Among the ranges of
the best quality that can be served, the stored syntax wins (no needless transcoding), else the
first one listed that the stored syntax can be transcoded to; none: 406.

Frames (PS3.18 8.7.3.5.2, Table 8.7.3-5): :func:`frame_target` gives the syntax and media type of
the frames. ``*/*``, no Accept, or a range that names the stored media type (or ``*``) keeps them
as stored; ``application/octet-stream`` without a transfer syntax means uncompressed; any other
media type or syntax is transcoded to when the codecs allow it, else 406.

Metadata (PS3.18 8.7.3.3): ``application/dicom+json`` (or ``application/json``), not inside a
``multipart/related``: the answer is one JSON document, not a multipart (406 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

from ..dicom import transcode
from ..dicom.frame_transcode import frame_transfer_syntax
from ..dicom.media import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    NATIVE_TRANSFER_SYNTAXES,
    MediaRange,
    frame_media_type,
    parse_accept,
    syntax_name,
)
from ..errors import NotAcceptable

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
ANY = transcode.ANY_TRANSFER_SYNTAX

DEFAULT_ACCEPT = {
    "": 'multipart/related; type="application/dicom"',
    "metadata": "application/dicom+json",
    "frames": 'multipart/related; type="application/octet-stream"',
    "bulkdata": 'multipart/related; type="application/octet-stream"',
    "rendered": "image/jpeg",
    "thumbnail": "image/jpeg",
}
_RAW = (None, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)

Feasible = Callable[[str, str], bool]
"""``(stored syntax, target syntax) -> can it be done here``: ``transcode.can_transcode``."""


@dataclass(frozen=True)
class InstanceSyntaxes:
    """The transfer syntaxes a client takes instances in: groups of equal quality, best first.
    ``as_stored``: any syntax will do (``*`` or none named)."""

    groups: tuple[tuple[str, ...], ...] = ()
    as_stored: bool = True

    @property
    def named(self) -> tuple[str, ...]:
        return tuple(s for group in self.groups for s in group)

    def takes(self, syntax: str) -> bool:
        return self.as_stored or syntax in self.named

    def choose(self, stored: str, feasible: Feasible = transcode.can_transcode) -> str:
        """The syntax to send an instance stored in ``stored`` in; NotAcceptable when none can be."""
        if self.as_stored:
            return stored
        for group in self.groups:
            if stored in group:
                return stored
            for syntax in group:
                if feasible(stored, syntax):
                    return syntax
        raise NotAcceptable(
            f"this instance is stored as {syntax_name(stored)} and cannot be sent as "
            + " or ".join(syntax_name(s) for s in self.named)
            + "; ask with transfer-syntax=*"
        )

    def candidates(self, stored: str, feasible: Feasible = transcode.can_transcode) -> list[str]:
        """Every syntax that may serve an instance stored in ``stored``, in the order to try."""
        if self.as_stored:
            return [stored]
        found: list[str] = []
        for group in self.groups:
            found += [stored] if stored in group else []
            found += [s for s in group if s != stored and feasible(stored, s)]
        return found

    def accept_header(self) -> str:
        """The Accept value to forward to an archive for these syntaxes."""
        if self.as_stored:
            return f'multipart/related; type="{DICOM}"; transfer-syntax=*'
        ranges = []
        for rank, group in enumerate(self.groups):
            q = f"; q={max(0.1, 1 - rank / 10):.1f}" if rank else ""
            ranges += [f'multipart/related; type="{DICOM}"; transfer-syntax={s}{q}' for s in group]
        return ", ".join(ranges)


def instance_syntaxes(accept: str | None) -> InstanceSyntaxes:
    """What an Accept value allows for instances; NotAcceptable when it allows no DICOM at all."""
    ranges = parse_accept(accept)
    if not ranges:
        return InstanceSyntaxes()
    wanted = [r for r in ranges if r.matches(DICOM)]
    if not wanted:
        raise NotAcceptable('instances are available as multipart/related; type="application/dicom"')
    if any(r.transfer_syntax in (None, ANY) for r in wanted):
        return InstanceSyntaxes()
    groups = tuple(
        tuple(dict.fromkeys(str(r.transfer_syntax) for r in same)) for _, same in groupby(wanted, _quality)
    )
    return InstanceSyntaxes(groups, as_stored=False)


def check_metadata(accept: str | None) -> None:
    """406 unless the client takes ``application/dicom+json`` (see the module doc)."""
    ranges = parse_accept(accept)
    if ranges and not any(
        r.matches(DICOM_JSON) or r.matches("application/json") for r in ranges if not r.multipart
    ):
        raise NotAcceptable("metadata is available as application/dicom+json")


def check_bulkdata(accept: str | None) -> None:
    ranges = parse_accept(accept)
    if ranges and not any(r.matches(OCTET_STREAM) for r in ranges):
        raise NotAcceptable(f"bulk data is available as {OCTET_STREAM}")


@dataclass(frozen=True)
class FrameTarget:
    """How frames leave: in ``syntax`` (the stored one: untouched), as parts of ``media_type``."""

    syntax: str
    media_type: str

    @property
    def part_type(self) -> str:
        return f"{self.media_type}; transfer-syntax={self.syntax}"


def frame_target(
    accept: str | None, stored: str, feasible: Feasible = transcode.can_transcode
) -> FrameTarget:
    """The syntax and media type for frames stored in ``stored`` (see the module doc)."""
    kept = _stored_frames(stored)
    ranges = parse_accept(accept)
    if not ranges:
        return kept
    for r in ranges:  # best first
        target = _frame_range(r, stored, kept, feasible)
        if target is not None:
            return target
    native = frame_media_type(stored)
    raise NotAcceptable(
        f"frames are available as {native}"
        + (f" or {OCTET_STREAM}" if native != OCTET_STREAM else "")
        + " (other syntaxes only where they can be transcoded to)"
    )


def frames_as_stored(accept: str | None) -> bool:
    """Whether the client takes frames in whatever syntax they are stored in (no Accept, ``*/*``
    or ``transfer-syntax=*``), so an archive's answer needs no check."""
    ranges = parse_accept(accept)
    return not ranges or any(r.type == "*/*" or r.transfer_syntax == ANY for r in ranges)


def frame_part_fits(accept: str | None, part_type: str) -> bool:
    """Whether an archive's frame part (its Content-Type, PS3.18 Table 8.7.3-5) is what the
    client asked for: a media type it names, in the syntax that range means."""
    (part,) = parse_accept(part_type) or [MediaRange("")]
    if not part.type:
        return False
    try:
        sent = frame_transfer_syntax(part.type, part.transfer_syntax)
    except NotAcceptable:
        return False
    for r in parse_accept(accept):
        if r.type == "*/*" or (r.matches(part.type) and r.transfer_syntax == ANY):
            return True
        if "*" in r.type or not r.matches(part.type):
            continue
        try:
            wanted = frame_transfer_syntax(part.type, r.transfer_syntax)
        except NotAcceptable:
            continue
        if wanted == sent or (wanted in _RAW and sent in _RAW):
            return True
    return False


def _stored_frames(stored: str) -> FrameTarget:
    if stored in NATIVE_TRANSFER_SYNTAXES:  # native bytes are little endian once read
        return FrameTarget(EXPLICIT_VR_LITTLE_ENDIAN, OCTET_STREAM)
    return FrameTarget(stored, frame_media_type(stored))


def _frame_range(r: MediaRange, stored: str, kept: FrameTarget, feasible: Feasible) -> FrameTarget | None:
    if r.type == "*/*" or (r.matches(kept.media_type) and r.transfer_syntax in (None, ANY, kept.syntax)):
        return kept
    if r.matches(OCTET_STREAM) and r.transfer_syntax == ANY:
        return kept
    if kept.media_type == OCTET_STREAM and r.matches(OCTET_STREAM) and r.transfer_syntax in _RAW:
        return kept
    media = r.type if "*" not in r.type else None
    if media is None:
        return None
    try:
        syntax = frame_transfer_syntax(media, r.transfer_syntax)
    except NotAcceptable:
        return None
    if syntax in (ANY, stored):
        return kept
    if syntax in transcode.NATIVE_TARGETS and stored in NATIVE_TRANSFER_SYNTAXES:
        return kept
    if not feasible(stored, syntax):
        return None
    return FrameTarget(syntax, frame_media_type(syntax))


def _quality(r: MediaRange) -> float:
    return r.q
