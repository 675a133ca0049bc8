"""MODP groups on both arithmetic paths (OpenSSL for named groups, blinded pow() for 1 and 2)
give the textbook values: y = 2^x mod p and g^xy, for every MODP group."""

from __future__ import annotations

import warnings

import pytest
from cryptography.utils import CryptographyDeprecationWarning

from ike.crypto import dh
from ike.crypto.rand import RandomSource

MODP = (1, 2, 5, 14, 15, 16, 17, 18)


@pytest.mark.parametrize("gid", MODP)
def test_public_and_shared_values_are_textbook(gid: int) -> None:
    g = dh.group(gid)
    assert isinstance(g, dh.MODPGroup)
    r = RandomSource.seeded(100 + gid)
    a, pub_a = g.generate(r)
    b, pub_b = g.generate(r)
    assert a.secret.bit_length() == b.secret.bit_length() == g.xbits
    assert int.from_bytes(pub_a, "big") == pow(2, a.secret, g.p)
    assert int.from_bytes(pub_b, "big") == pow(2, b.secret, g.p)
    z = g.shared_secret(a, pub_b)
    assert z == pow(2, a.secret * b.secret, g.p).to_bytes(g.shared_len, "big")
    assert z == g.shared_secret(b, pub_a)


@pytest.mark.parametrize("gid", [1, 2])
def test_blinded_pow_agrees_with_openssl(gid: int) -> None:
    # the pow() groups against cryptography's own (parameter-checking, slow) path, and the
    # random blind never shows in the result: the same private value, the same output
    g = dh.group(gid)
    assert isinstance(g, dh.MODPGroup)
    a, _ = g.generate(RandomSource.seeded(5))
    _, pub_b = g.generate(RandomSource.seeded(6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        from cryptography.hazmat.primitives.asymmetric import dh as ffdh

        pn = ffdh.DHParameterNumbers(g.p, 2)
        ours = ffdh.DHPrivateNumbers(
            a.secret, ffdh.DHPublicNumbers(pow(2, a.secret, g.p), pn)).private_key()
        peer = ffdh.DHPublicNumbers(int.from_bytes(pub_b, "big"), pn).public_key()
        expected = ours.exchange(peer).rjust(g.shared_len, b"\0")
    assert {g.shared_secret(a, pub_b) for _ in range(4)} == {expected}


@pytest.mark.parametrize("gid", [1, 2])
def test_pow_groups_still_check_the_peer_value(gid: int) -> None:
    g = dh.group(gid)
    assert isinstance(g, dh.MODPGroup)
    priv, _ = g.generate(RandomSource.seeded(1))
    n = g.public_len
    for bad in (0, 1, g.p - 1, g.p):
        with pytest.raises(dh.DHError, match="out of range"):
            g.shared_secret(priv, bad.to_bytes(n, "big"))
