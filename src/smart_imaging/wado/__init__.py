"""WADO-RS and QIDO-RS under an Endpoint address (PS3.18 10.4, 10.6): one home, pure.

- ``request``: :class:`WadoRequest`, parsed from our URL and built again for an archive (``path``,
  ``rebase``).
- ``negotiate``: Accept and transfer-syntax negotiation (PS3.18 8.7.3), used by every source.
- ``parts``: whole parts of a multipart body arriving in chunks (for answers that look inside).
- ``qido``: :class:`QidoRequest` (PS3.18 10.6, 8.3.4) and the :class:`QidoQuery` a source answers.
- ``matching``: the scope of a QIDO-RS answer (the bound study only), attribute matching, paging.

Nothing here does I/O: no httpx, pynetdicom, starlette or sqlite3.
"""

from .request import Resource, WadoRequest, rebase

__all__ = ["Resource", "WadoRequest", "rebase"]
