"""The ``dicom-dimse`` image source: a classic DICOM archive (C-FIND, C-GET/C-MOVE) via pynetdicom."""

from .source import DimseSource

__all__ = ["DimseSource"]
