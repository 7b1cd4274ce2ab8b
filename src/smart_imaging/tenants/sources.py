"""Building a tenant's image source from its ``images`` section (``images.type``).

The composition root of the sources, beside the registry, so ``sources`` needs no builder that
imports every implementation (and no imports inside functions)."""

from __future__ import annotations

import httpx

from ..config.tenant import DicomWebImages, DimseImages, FolderImages
from ..sources.base import ImageSource
from ..sources.dicomweb import DicomWebSource
from ..sources.dimse import DimseSource
from ..sources.folder import FolderSource


def build_source(config: DicomWebImages | DimseImages | FolderImages, http: httpx.AsyncClient) -> ImageSource:
    """Make the image source a tenant's ``images`` section asks for."""
    if isinstance(config, DicomWebImages):
        return DicomWebSource(config, http)
    if isinstance(config, DimseImages):
        return DimseSource(config)
    return FolderSource(config)
