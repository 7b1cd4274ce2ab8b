"""Binding tokens: sealed, authenticated, expiring, and bound to one tenant/study/patient."""

from __future__ import annotations

import time

import pytest

from smart_imaging.binding import Binding, key_from_secret, open_binding, seal
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
