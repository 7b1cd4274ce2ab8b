"""The dual-launch authorization server's token service on two "replicas" (two ``TokenService``s,
each with its own connection) sharing a real ``redis-server``: a code issued by one is redeemed
on the other, a replay on either revokes the family for both, a refresh token rotates once across
both, a code redeemed concurrently on both gives tokens once; Redis down is 503, not a local store."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from smart_imaging.config.oauth import OAuthServerSettings
from smart_imaging.errors import Unavailable
from smart_imaging.oauth import pkce
from smart_imaging.oauth.clients import ClientPolicy
from smart_imaging.oauth.errors import OAuthError
from smart_imaging.oauth.records import Grant
from smart_imaging.oauth.redis_store import SharedStateStore
from smart_imaging.oauth.site import Site
from smart_imaging.oauth.tokens import TokenService
from smart_imaging.state import SharedState, open_state
from tests.support.redis import RedisServer, redis_server

__all__ = ["redis_server"]  # the fixture

SITE = Site("t", "http://127.0.0.1:8000/t")
REDIRECT = "http://127.0.0.1:9999/callback"
SCOPE = "launch/patient patient/ImagingStudy.rs offline_access"
KEY = b"replica-key-" * 3


@dataclass
class Replicas:
    one: TokenService
    two: TokenService
    states: list[SharedState]


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[Replicas]:
    redis_server.client().flushdb()
    settings = OAuthServerSettings()  # no clients: open mode, loopback redirect URIs
    states = [await open_state(redis_server.url, KEY) for _ in range(2)]
    services = [TokenService(SharedStateStore(s), ClientPolicy(settings), settings) for s in states]
    yield Replicas(services[0], services[1], states)
    for state in states:
        await state.aclose()


async def issued(service: TokenService) -> tuple[str, str]:
    """A code for a public app (as the browser flow issues it) and its PKCE verifier."""
    verifier = pkce.new_verifier()
    grant = Grant(
        tenant="t",
        client_id="app",
        scope=SCOPE,
        patient_id="p1",
        patient={"resourceType": "Patient", "id": "p1"},
        family=secrets.token_hex(16),
        redirect_uri=REDIRECT,
        code_challenge=pkce.s256(verifier),
    )
    return await service.issue_code(grant), verifier


def code_form(code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": "app",
    }


async def redeem(service: TokenService, code: str, verifier: str) -> dict[str, Any]:
    return await service.token(code_form(code, verifier), None, SITE)


async def test_a_code_from_one_replica_redeems_on_the_other_and_a_replay_revokes_for_both(
    replicas: Replicas,
) -> None:
    code, verifier = await issued(replicas.one)
    tokens = await redeem(replicas.two, code, verifier)
    assert tokens["patient"] == "p1" and "refresh_token" in tokens
    found = await replicas.one.lookup(tokens["access_token"])
    assert found is not None and found.tenant == "t"
    with pytest.raises(OAuthError) as replay:
        await redeem(replicas.one, code, verifier)
    assert replay.value.error == "invalid_grant"
    assert await replicas.two.lookup(tokens["access_token"]) is None  # the family is revoked for all
    assert await replicas.one.lookup(tokens["access_token"]) is None


async def test_a_refresh_token_rotates_once_across_replicas(replicas: Replicas) -> None:
    code, verifier = await issued(replicas.one)
    first = await redeem(replicas.one, code, verifier)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "app"}
    second = await replicas.two.token(form, None, SITE)
    assert await replicas.one.lookup(second["access_token"]) is not None
    with pytest.raises(OAuthError):
        await replicas.one.token(form, None, SITE)  # the retired one again, elsewhere
    assert await replicas.two.lookup(second["access_token"]) is None  # its family is revoked


async def test_a_code_redeemed_on_both_at_once_gives_tokens_once(replicas: Replicas) -> None:
    for _ in range(5):
        code, verifier = await issued(replicas.one)
        results = await asyncio.gather(
            *(redeem(r, code, verifier) for r in (replicas.one, replicas.two) * 3), return_exceptions=True
        )
        granted = [r for r in results if isinstance(r, dict)]
        assert len(granted) == 1 and all(isinstance(r, (dict, OAuthError)) for r in results), results
        # the others were replays: the tokens the one gave are revoked, on both replicas
        assert await replicas.two.lookup(granted[0]["access_token"]) is None
        assert await replicas.one.lookup(granted[0]["access_token"]) is None


async def test_redis_down_is_503_for_the_token_service() -> None:
    server = RedisServer().start()
    state = await open_state(server.url, KEY)
    settings = OAuthServerSettings()
    service = TokenService(SharedStateStore(state), ClientPolicy(settings), settings)
    try:
        code, verifier = await issued(service)
        server.kill()
        with pytest.raises(Unavailable) as down:
            await redeem(service, code, verifier)
        assert down.value.status == 503
        with pytest.raises(Unavailable):  # nor does a request with one of its tokens pass
            await service.lookup("some-token")
    finally:
        await state.aclose()
        server.stop()
