"""Image sources: where studies come from. ``tenants.sources`` builds one from ``images.type``."""

from __future__ import annotations

from .base import ImageSource, SeriesRecord, StudyQuery, StudyRecord, WadoRequest, WadoResponse

__all__ = [
    "ImageSource",
    "SeriesRecord",
    "StudyQuery",
    "StudyRecord",
    "WadoRequest",
    "WadoResponse",
]
