"""The ``folder`` image source: DICOM Part-10 files under a local folder, indexed in SQLite."""

from .source import FolderSource

__all__ = ["FolderSource"]
