"""Bad input never crashes the crypto layer: only its own error types come out."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa as crsa
from hypothesis import given, settings
from hypothesis import strategies as st

from ike.crypto import dh, rsa
from ike.crypto.cipher import AES_CBC, BLOWFISH_CBC, CBC, TRIPLEDES_CBC, CipherError, Keystate
from ike.crypto.rand import RandomSource

GROUPS = [1, 2, 14, 19, 21, 26, 27, 30]
PRIVATE = {g: dh.group(g).generate(RandomSource.seeded(g))[0] for g in GROUPS}
KEY = crsa.generate_private_key(public_exponent=65537, key_size=1024)


@settings(max_examples=60, deadline=None)
@given(gid=st.sampled_from(GROUPS), data=st.binary(max_size=140))
def test_dh_public_values(gid: int, data: bytes) -> None:
    g = dh.group(gid)
    if len(data) < g.public_len:
        data = data.ljust(g.public_len, b"\x01")
    for candidate in (data, data[: g.public_len]):
        try:
            secret = g.shared_secret(PRIVATE[gid], candidate)
        except dh.DHError:
            continue
        assert len(secret) == g.shared_len


@settings(max_examples=60, deadline=None)
@given(enc=st.sampled_from([AES_CBC, BLOWFISH_CBC, TRIPLEDES_CBC]), data=st.binary(max_size=80))
def test_decrypt_anything(enc: int, data: bytes) -> None:
    cbc = CBC(enc, bytes(24 if enc == TRIPLEDES_CBC else 16))
    ks = Keystate(cbc, bytes(cbc.block_size))
    try:
        plain = ks.decrypt(data)
    except CipherError:
        assert len(data) % cbc.block_size or not data
        return
    assert len(plain) == len(data)
    assert ks.pending_iv == data[-cbc.block_size:]


@settings(max_examples=60, deadline=None)
@given(sig=st.binary(max_size=140), h=st.binary(max_size=40))
def test_verify_anything(sig: bytes, h: bytes) -> None:
    assert rsa.verify(KEY.public_key(), h, sig) is False


@pytest.mark.parametrize("n", [0, 1, 7, 200])
def test_random_source_lengths(n: int) -> None:
    assert len(RandomSource.seeded(1).bytes(n)) == n
    with pytest.raises(ValueError):
        RandomSource().bytes(-1)
