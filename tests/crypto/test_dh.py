"""Diffie-Hellman groups: agreement, determinism, public value validation."""

from __future__ import annotations

import pytest

from ike.crypto import dh
from ike.crypto.rand import RandomSource


@pytest.mark.parametrize("gid", dh.supported())
def test_both_sides_agree(gid: int) -> None:
    # as isakmpd's regress/sbin/isakmpd/dh/dhtest.c: two parties, same secret
    g = dh.group(gid)
    r = RandomSource.seeded(gid)
    a, pub_a = g.generate(r)
    b, pub_b = g.generate(r)
    assert len(pub_a) == len(pub_b) == g.public_len
    s = g.shared_secret(a, pub_b)
    assert s == g.shared_secret(b, pub_a)
    assert len(s) == g.shared_len


def test_supported_groups() -> None:
    assert dh.supported() == (1, 2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 25, 26, 27, 28, 29, 30)
    with pytest.raises(dh.DHError, match="unsupported Diffie-Hellman group 3"):
        dh.group(3)


def test_seed_reproduces_public_values() -> None:
    for gid in (2, 14, 19, 27):
        g = dh.group(gid)
        _, p1 = g.generate(RandomSource.seeded(7))
        _, p2 = g.generate(RandomSource.seeded(7))
        _, p3 = g.generate(RandomSource.seeded(8))
        assert p1 == p2 != p3


@pytest.mark.parametrize("gid", [1, 2, 14])
def test_modp_matches_pow(gid: int) -> None:
    g = dh.group(gid)
    assert isinstance(g, dh.MODPGroup)
    priv, pub = g.generate(RandomSource.seeded(3))
    assert int.from_bytes(pub, "big") == pow(2, priv.secret, g.p)


@pytest.mark.parametrize("gid", [2, 14])
def test_modp_rejects_out_of_range(gid: int) -> None:
    g = dh.group(gid)
    assert isinstance(g, dh.MODPGroup)
    priv, _ = g.generate(RandomSource.seeded(1))
    n = g.public_len
    for bad in (0, 1, g.p - 1, g.p, (1 << (8 * n)) - 1):
        with pytest.raises(dh.DHError, match="out of range"):
            g.shared_secret(priv, bad.to_bytes(n, "big"))
    with pytest.raises(dh.DHError, match="need"):
        g.shared_secret(priv, b"\x05" * (n - 1))


@pytest.mark.parametrize("gid", [19, 20, 21, 25, 26, 27, 28, 29, 30])
def test_ecp_rejects_point_off_curve(gid: int) -> None:
    g = dh.group(gid)
    priv, pub = g.generate(RandomSource.seeded(2))
    bad = pub[:-1] + bytes([pub[-1] ^ 1])
    with pytest.raises(dh.DHError, match="not a point on the curve"):
        g.shared_secret(priv, bad)
    with pytest.raises(dh.DHError, match="need"):
        g.check_public(pub + b"\0")
    with pytest.raises(dh.DHError):
        g.check_public(bytes(g.public_len))


def test_private_value_of_other_group_is_refused() -> None:
    a, _ = dh.group(19).generate(RandomSource.seeded(1))
    _, pub = dh.group(14).generate(RandomSource.seeded(1))
    with pytest.raises(dh.DHError, match="belongs to group 19"):
        dh.group(14).shared_secret(a, pub)
    assert "secret" not in repr(a) and str(a.secret) not in repr(a)


def test_every_other_group_id_is_refused() -> None:
    # dhtest.c walks ids 0..254 and tests those group_get() accepts
    for gid in range(255):
        if gid in dh.supported():
            assert dh.group(gid).id == gid
        else:
            with pytest.raises(dh.DHError, match=f"group {gid}$"):
                dh.group(gid)
