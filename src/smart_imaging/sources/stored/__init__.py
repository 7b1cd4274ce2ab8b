"""Answers from stored Part-10 files, shared by the sources that keep files (folder, DIMSE):
neither imports the other.

- ``instance``: :class:`StoredInstance`, what an answer needs to know about one file.
- ``checks``: is the file still the one described (size, mtime, completeness)?
- ``files``: instances as multipart parts, as stored or transcoded, streamed.
- ``answers``: metadata, frames (as stored, decoded or transcoded), bulk data, rendered images.
"""

from .instance import StoredInstance

__all__ = ["StoredInstance"]
