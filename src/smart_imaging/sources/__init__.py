"""Image sources: where studies come from. Built from ``images.type``."""

from __future__ import annotations

import httpx

from ..config.tenant import DicomWebImages, DimseImages, FolderImages
from .base import ImageSource, SeriesRecord, StudyQuery, StudyRecord, WadoRequest, WadoResponse

__all__ = [
    "ImageSource",
    "SeriesRecord",
    "StudyQuery",
    "StudyRecord",
    "WadoRequest",
    "WadoResponse",
    "build_source",
]


def build_source(config: DicomWebImages | DimseImages | FolderImages, http: httpx.AsyncClient) -> ImageSource:
    """Make the image source a tenant's ``images`` section asks for."""
    if isinstance(config, DicomWebImages):
        from .dicomweb import DicomWebSource

        return DicomWebSource(config, http)
    if isinstance(config, DimseImages):
        from .dimse import DimseSource  # type: ignore[import-not-found,unused-ignore]

        return DimseSource(config)  # type: ignore[no-any-return,unused-ignore]
    from .folder import FolderSource  # type: ignore[import-not-found,unused-ignore]

    return FolderSource(config)  # type: ignore[no-any-return,unused-ignore]
