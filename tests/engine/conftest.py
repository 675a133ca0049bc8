"""Two engines in memory, a fake clock and fake kernels: the harness of the engine tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from ike.conf import Conf
from ike.crypto.rand import RandomSource
from ike.engine import Engine
from ike.events import EngineEvent
from ike.kernel.fake import FakeKernel

A, B = "10.0.0.1", "10.0.0.2"

CONF = """
[General]
Retransmits=            3
Exchange-max-time=      120
[Phase 1]
{peer}=                 peer
[Phase 2]
{conns}
[peer]
Phase=                  1
Address=                {peer}
Local-address=          {me}
Authentication=         {psk}
Configuration=          p1conf
{extra_peer}
[p1conf]
EXCHANGE_TYPE=          {mode}
Transforms=             {p1}
[conn]
Phase=                  2
ISAKMP-peer=            peer
Configuration=          qmconf
Local-ID=               net-{mine}
Remote-ID=              net-{theirs}
[qmconf]
EXCHANGE_TYPE=          QUICK_MODE
Suites=                 {suites}
[net-a]
ID-type=                IPV4_ADDR_SUBNET
Network=                192.168.1.0
Netmask=                255.255.255.0
[net-b]
ID-type=                IPV4_ADDR_SUBNET
Network=                192.168.2.0
Netmask=                255.255.255.0
[p1-short]
ENCRYPTION_ALGORITHM=   AES_CBC
KEY_LENGTH=             128
HASH_ALGORITHM=         SHA
AUTHENTICATION_METHOD=  PRE_SHARED
GROUP_DESCRIPTION=      MODP_2048
Life=                   life-short
[qm-short]
Protocols=              qm-short-p
[qm-short-p]
PROTOCOL_ID=            IPSEC_ESP
Transforms=             qm-short-xf
[qm-short-xf]
TRANSFORM_ID=           AES
KEY_LENGTH=             128
ENCAPSULATION_MODE=     TUNNEL
AUTHENTICATION_ALGORITHM= HMAC_SHA
Life=                   life-short
[life-short]
LIFE_TYPE=              SECONDS
LIFE_DURATION=          120,60:86400
{more}
"""


def make_conf(side: str, *, mode: str = "ID_PROT", p1: str = "AES-128-SHA-GRP14",
              suites: str = "QM-ESP-AES-128-SHA-SUITE", psk: str = "mekmitasdigoat",
              extra_peer: str = "", more: str = "", active: bool | None = None,
              addrs: tuple[str, str] = (A, B)) -> Conf:
    """The configuration of side ``a`` (10.0.0.1, initiator) or ``b`` (10.0.0.2).  It always
    holds ``p1-short`` and ``qm-short``, Phase 1 and 2 suites of 120 s lives, for tests of
    expiry and rekeying to name."""
    me, peer = addrs if side == "a" else (addrs[1], addrs[0])
    if active is None:
        active = side == "a"
    conns = "Connections=            conn" if active else "Passive-Connections=    conn"
    text = CONF.format(peer=peer, me=me, psk=psk, mode=mode, p1=p1, suites=suites,
                       mine=side, theirs="b" if side == "a" else "a", conns=conns,
                       extra_peer=extra_peer, more=more)
    return Conf.from_text(text, source=f"conf-{side}")


@dataclass
class Pair:
    """Two engines wired back to back with a fake clock."""

    a: Engine
    b: Engine
    ka: FakeKernel
    kb: FakeKernel
    now: float = 1_000_000.0
    wire: list[tuple[str, bytes]] = field(default_factory=list)
    drop: Callable[[str, int, bytes], bool] | None = None
    count: int = 0

    def flush(self, rounds: int = 50) -> None:
        """Deliver datagrams both ways until nothing moves."""
        for _ in range(rounds):
            moved = False
            for name, src, dst in (("a", self.a, self.b), ("b", self.b, self.a)):
                for data, local, peer in src.datagrams_to_send(self.now):
                    moved = True
                    self.count += 1
                    self.wire.append((name, data))
                    if self.drop is not None and self.drop(name, self.count, data):
                        continue
                    dst.receive_datagram(data, local, peer, self.now)
            if not moved:
                return
        raise AssertionError("exchanges did not settle")

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing timers on the way."""
        end = self.now + seconds
        while True:
            due = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
            nxt = min(due) if due else None
            if nxt is None or nxt > end:
                break
            self.now = max(self.now, nxt)
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.flush()
        self.now = end

    def events(self, side: str) -> list[EngineEvent]:
        """Pop every pending event of one side."""
        engine = self.a if side == "a" else self.b
        out = []
        while (ev := engine.next_event()) is not None:
            out.append(ev)
        return out


def make_pair(conf_a: Conf, conf_b: Conf, *, seed: int = 1, **kw: object) -> Pair:
    """Two engines with seeded randomness and fake kernels."""
    ka, kb = FakeKernel(first_spi=0x1000), FakeKernel(first_spi=0x2000)
    a = Engine(conf_a, rand=RandomSource.seeded(seed), kernel=ka, tag="A", **kw)  # type: ignore[arg-type]
    b = Engine(conf_b, rand=RandomSource.seeded(seed + 1000), kernel=kb, tag="B", **kw)  # type: ignore[arg-type]
    return Pair(a, b, ka, kb)


@pytest.fixture
def pair_factory() -> Callable[..., Pair]:
    """Build a pair from per-side configuration options."""

    def build(seed: int = 1, engine_kw: dict[str, object] | None = None,
              **conf_kw: object) -> Pair:
        a_kw = {k[2:]: v for k, v in conf_kw.items() if k.startswith("a_")}
        b_kw = {k[2:]: v for k, v in conf_kw.items() if k.startswith("b_")}
        common = {k: v for k, v in conf_kw.items() if not k.startswith(("a_", "b_"))}
        return make_pair(make_conf("a", **{**common, **a_kw}),  # type: ignore[arg-type]
                         make_conf("b", **{**common, **b_kw}),  # type: ignore[arg-type]
                         seed=seed, **(engine_kw or {"use_keynote": False}))

    return build


_KEYS: dict[str, object] = {}


def rsa_key(name: str) -> object:
    """A 2048-bit RSA key, made once per test process."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if name not in _KEYS:
        _KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[name]


def rsa_auth_pair() -> tuple[object, object]:
    """MemoryAuth sources for a (10.0.0.1) and b (10.0.0.2) that trust each other's raw keys."""
    from ike.auth import MemoryAuth

    ka, kb = rsa_key("a"), rsa_key("b")
    auth_a = MemoryAuth(keys={A: ka}, peer_keys={B: kb.public_key()})  # type: ignore[attr-defined,dict-item]
    auth_b = MemoryAuth(keys={B: kb}, peer_keys={A: ka.public_key()})  # type: ignore[attr-defined,dict-item]
    return auth_a, auth_b


class Helpers:
    """The harness functions, handed to tests as the ``h`` fixture (importlib mode has no
    importable conftest)."""

    make_conf = staticmethod(make_conf)
    make_pair = staticmethod(make_pair)
    rsa_auth_pair = staticmethod(rsa_auth_pair)
    rsa_key = staticmethod(rsa_key)
    A = A
    B = B


@pytest.fixture
def h() -> type[Helpers]:
    """The harness functions."""
    return Helpers



#: modules that test the timer machinery itself, each mode chosen explicitly: run once
_OWN_TIMER_MODES = {"test_timers", "test_timer_scan"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every other engine test runs twice, once per ``timer_mode``."""
    if metafunc.module.__name__.rsplit(".", 1)[-1] not in _OWN_TIMER_MODES:
        metafunc.parametrize("timer_mode", ["scan", "heap"], indirect=True)


@pytest.fixture(autouse=True)
def timer_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine's timers scanned (its few SAs, as in a handshake), or "heap": the deadline
    heap in use from the first SA (``SCAN_MAX`` -1, ike.timers), so that the heap is held to
    the whole behaviour the scan has, not only to its own tests."""
    import ike.timers

    mode = str(getattr(request, "param", "scan"))
    if mode == "heap":
        monkeypatch.setattr(ike.timers, "SCAN_MAX", -1)
    return mode
