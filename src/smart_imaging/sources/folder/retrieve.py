"""WADO-RS answers from the folder's files (PS3.18 10.4): the indexed instances, answered by the
shared file-backed answers (``sources.stored``). Negotiation follows ``wado.negotiate``: each
instance in the transfer syntax the client asked for (transcoded when it is not the stored one),
frames as stored, uncompressed or transcoded; 406 only when it cannot be done.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ...wado.negotiate import instance_syntaxes
from ..base import WadoRequest, WadoResponse
from ..stored import StoredInstance, answers, files


async def retrieve(found: list[StoredInstance], request: WadoRequest) -> WadoResponse:
    """Answer one WADO-RS request for the (non-empty) ``found`` instances."""
    if request.resource == "":
        syntaxes = instance_syntaxes(request.accept)
        for item in found:  # a study none of whose instances can be sent is a 406 up front
            syntaxes.choose(item.transfer_syntax)
        return files.instances_response(_each(found), syntaxes)
    if request.resource == "metadata":
        return answers.metadata_response(found, request)
    if request.resource == "frames":
        return await answers.frames_response(answers.single(found, request), request)
    if request.resource == "bulkdata":
        return await answers.bulkdata_response(answers.single(found, request), request)
    return await answers.rendered_response(answers.representative(found, request), request)


async def _each(found: list[StoredInstance]) -> AsyncIterator[StoredInstance]:
    for item in found:
        yield item
