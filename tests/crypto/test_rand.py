"""The injected random source."""

from __future__ import annotations

from ike.crypto.rand import RandomSource


def test_seeded_is_reproducible() -> None:
    a, b = RandomSource.seeded(42), RandomSource.seeded(42)
    assert a.bytes(5) + a.bytes(100) == b.bytes(105)
    assert RandomSource.seeded(43).bytes(16) != RandomSource.seeded(42).bytes(16)
    assert a.deterministic and not RandomSource().deterministic


def test_os_source_and_ranges() -> None:
    r = RandomSource()
    assert len(r.bytes(32)) == 32 and r.bytes(16) != r.bytes(16)
    s = RandomSource.seeded(1)
    vals = [s.randrange(5, 9) for _ in range(200)]
    assert set(vals) == {5, 6, 7, 8}
    assert all(s.randbits(3) < 8 for _ in range(50))
    assert 0 <= s.uint32() < 1 << 32
