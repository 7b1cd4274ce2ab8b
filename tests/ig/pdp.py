"""A small policy decision point for the tests (the protocol of ``smart_imaging.access.pdp``),
with switchable misbehaviour: the real HTTP client talks to it over loopback."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


@dataclass
class PdpState:
    # permit | deny-modality (deny studies with a modality in deny_modalities; a series subset
    # otherwise) | slow | garbage | wrong-protocol | error500
    mode: str = "permit"
    deny_modalities: set[str] = field(default_factory=set)
    deny_series_modalities: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)


def decide(state: PdpState, asked: dict[str, Any]) -> dict[str, Any]:
    if set(asked["study"]["modalities"]) & state.deny_modalities:
        return {"decision": "deny", "reason": "modality withheld by the test PDP"}
    series = [s["uid"] for s in asked["series"] if s["modality"] not in state.deny_series_modalities]
    if state.deny_series_modalities:
        return {"decision": "permit", "series": series, "reason": "some series withheld"}
    return {"decision": "permit", "reason": "test PDP permits"}


def make_pdp(state: PdpState) -> Starlette:
    async def endpoint(request: Request) -> Response:
        asked = json.loads(await request.body())
        state.requests.append(asked)
        if state.mode == "slow":
            await asyncio.sleep(5)
        if state.mode == "garbage":
            return PlainTextResponse("<html>policy engine maintenance</html>", media_type="text/html")
        if state.mode == "wrong-protocol":
            return JSONResponse({"decision": "maybe"})
        if state.mode == "error500":
            return PlainTextResponse("boom", status_code=500)
        return JSONResponse(decide(state, asked))

    return Starlette(routes=[Route("/decide", endpoint, methods=["POST"])])
