"""Binding tokens: sealed, authenticated, expiring, and bound to one tenant/study/patient."""

from __future__ import annotations

import time

import pytest

from smart_imaging.binding import Binding, BindingOpener, key_from_secret, open_binding, seal
from smart_imaging.errors import Forbidden


def test_round_trip_and_opacity() -> None:
    key, random_key = key_from_secret("secret")
    assert not random_key
    binding = Binding("tenant", "1.2.3.4", "patient-7", int(time.time()) + 60)
    token = seal(binding, key)
    assert open_binding(token, key) == binding
    assert "1.2.3.4" not in token and "patient-7" not in token
    assert seal(binding, key) != token  # fresh nonce each time: unguessable


def test_tampering_other_keys_and_expiry_are_refused() -> None:
    key, _ = key_from_secret("secret")
    other, _ = key_from_secret("another secret")
    token = seal(Binding("t", "1.2", "p", int(time.time()) + 60), key)
    head, enc_key, iv, ciphertext, tag = token.split(".")
    flipped = ciphertext[:-2] + ("A" if ciphertext[-2] != "A" else "B") + ciphertext[-1]
    for bad in (".".join([head, enc_key, iv, flipped, tag]), token[:-3] + "abc", "x.y", "", token + "."):
        with pytest.raises(Forbidden):
            open_binding(bad, key)
    with pytest.raises(Forbidden):
        open_binding(token, other)
    expired = seal(Binding("t", "1.2", "p", int(time.time()) - 1), key)
    with pytest.raises(Forbidden, match="expired"):
        open_binding(expired, key)


def test_unset_secret_gives_random_key() -> None:
    a, flagged = key_from_secret(None)
    b, _ = key_from_secret(None)
    assert flagged
    token = seal(Binding("t", "1.2", None, int(time.time()) + 60), a)
    with pytest.raises(Forbidden):
        open_binding(token, b)


def test_token_digest_is_keyed_stable_and_bound_into_the_binding() -> None:
    """Issue 11.1: the binding carries a keyed digest of the token that searched, never the token
    or its plain hash; ``same_token`` compares in constant time."""
    import hashlib

    from smart_imaging.binding import same_token, token_digest

    key, _ = key_from_secret("secret")
    other_key, _ = key_from_secret("another secret")
    digest = token_digest("token-a", key)
    assert digest == token_digest("token-a", key) != token_digest("token-b", key)
    assert digest != token_digest("token-a", other_key)
    assert token_digest(None, key) == token_digest("", key) != digest
    assert hashlib.sha256(b"token-a").hexdigest()[:22] not in digest and "token-a" not in digest
    sealed = seal(Binding("t", "1.2", "p", int(time.time()) + 60, "MRN", digest), key)
    opened = open_binding(sealed, key)
    assert opened.token_digest == digest and same_token(opened, digest)
    assert not same_token(opened, token_digest("token-b", key))
    assert not same_token(Binding("t", "1.2", "p", 0), digest)  # a binding bound to no token


def test_the_opener_decrypts_each_address_once_and_checks_expiry_every_time() -> None:
    key, _ = key_from_secret("secret")
    opener = BindingOpener(key, size=2)
    soon = int(time.time()) + 60
    tokens = [seal(Binding("t", f"1.2.{n}", "p", soon), key) for n in range(3)]
    first = opener.open(tokens[0])
    assert opener.open(tokens[0]) is first  # kept: not decrypted again
    with pytest.raises(Forbidden, match="expired"):
        opener.open(tokens[0], now=soon + 1)  # kept, yet expired
    opener.open(tokens[1])
    opener.open(tokens[2])  # past the size: the oldest goes
    assert opener.open(tokens[0]) == first and opener.open(tokens[0]) is not first
    flipped = tokens[1][:-3] + ("abc" if not tokens[1].endswith("abc") else "abd")
    for _ in range(2):  # a refused address is refused again, never kept
        with pytest.raises(Forbidden):
            opener.open(flipped)
    other, _ = key_from_secret("another secret")
    with pytest.raises(Forbidden):
        BindingOpener(other).open(tokens[1])
