"""HTTP client of an external policy decision point (the protocol is :mod:`.access.pdp`).

Interface::

    client = PolicyDecisionClient(policy.decision_point, tenant="hospital", http=shared_httpx_client)
    decision = await client.decide(requester, study_json, series_jsons)   # a StudyDecision
    final = intersect(local_decision, decision)        # smart_imaging.access.policy.intersect
    await client.aclose()                              # closes the httpx client only if it made it

Fail closed: when the decision point is unreachable, slower than ``timeout`` (the whole exchange,
connect to last byte), answers a non-2xx status, a body over ``maxResponseBytes``, or anything but
a valid decision, :meth:`PolicyDecisionClient.decide` raises :class:`~smart_imaging.errors.Unavailable`
(503 with ``Retry-After``), never a grant. Failures are not cached; the next request asks again.

Caching: decisions (permits and denials) are kept in a :class:`~smart_imaging.cache.TtlCache`
bounded to ``cacheMaxEntries`` for ``cacheTtl`` seconds, or less when the decision's own ``ttl``
says so (``0``: not cached). The key is a digest of the whole request (client, user, scopes,
patient, study and series attributes), never a token. A policy change at the decision point takes
effect within ``cacheTtl`` seconds.

Authentication to the decision point: ``{"type": "bearer", "token": ...}`` or
``{"type": "http-basic", "username": ..., "password": ...}``; the credentials are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from .access.pdp import Answer, DecisionError, decision_request, parse_decision, request_key
from .access.policy import Requester, StudyDecision
from .cache import TtlCache
from .config.policy import BasicAuth, BearerAuth, DecisionPoint
from .dicom.json_model import DicomJson
from .errors import Unavailable

log = logging.getLogger(__name__)
RETRY_AFTER = 5  # seconds suggested to clients when the decision point cannot answer


class PolicyDecisionClient:
    def __init__(
        self,
        config: DecisionPoint,
        *,
        tenant: str,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._tenant = tenant
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(follow_redirects=False)
        self._cache: TtlCache[str, StudyDecision] = TtlCache(
            config.cache_max_entries, ttl=config.cache_ttl, clock=clock
        )

    async def decide(
        self, requester: Requester, study_json: DicomJson, series_jsons: Sequence[DicomJson] = ()
    ) -> StudyDecision:
        """The decision point's answer for one study (cached); raises ``Unavailable`` (503)."""
        request = decision_request(requester, study_json, series_jsons, tenant=self._tenant)
        key = request_key(request)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        answer = await self._ask(request)
        ttl = self._config.cache_ttl if answer.ttl is None else min(answer.ttl, self._config.cache_ttl)
        self._cache.put(key, answer.decision, ttl=ttl)  # a ttl of 0 stores nothing
        return answer.decision

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def _ask(self, request: dict[str, Any]) -> Answer:
        try:
            async with asyncio.timeout(self._config.timeout):
                raw = await self._post(json.dumps(request).encode())
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise _unavailable("did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise _unavailable(f"could not be reached ({type(exc).__name__})") from exc
        try:
            return parse_decision(_json(raw), request)
        except DecisionError as exc:
            raise _unavailable(f"answered outside the protocol: {exc}") from exc

    async def _post(self, body: bytes) -> bytes:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",  # the size bound counts the bytes as sent
            **_auth_headers(self._config),
        }
        limit = self._config.max_response_bytes
        request = self._http.build_request(
            "POST", self._config.url, content=body, headers=headers, timeout=self._config.timeout
        )
        response = await self._http.send(request, stream=True)
        try:
            if not 200 <= response.status_code < 300:
                raise _unavailable(f"answered HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _unavailable(f"answered more than {limit} bytes")
            return await _read_bounded(response, limit)
        finally:
            await response.aclose()


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise _unavailable(f"answered more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(raw: bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise DecisionError(f"{constant} is not JSON")

    try:
        return json.loads(raw, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, DecisionError):
            raise
        raise DecisionError("the body is not JSON") from None


def _auth_headers(config: DecisionPoint) -> dict[str, str]:
    auth = config.auth
    if isinstance(auth, BearerAuth):
        return {"Authorization": f"Bearer {auth.token.get_secret_value()}"}
    if isinstance(auth, BasicAuth):
        pair = f"{auth.username}:{auth.password.get_secret_value()}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    return {}


def _unavailable(what: str) -> Unavailable:
    message = f"the policy decision point {what}; access is refused until it answers"
    log.warning("policy decision point: %s", what)
    return Unavailable(message, retry_after=RETRY_AFTER)
