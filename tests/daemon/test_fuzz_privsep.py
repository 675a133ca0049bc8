"""Fuzzing the privilege-separation parent: whatever bytes, JSON or kernel command encodings the
unprivileged child sends, the parent answers with a refusal that is logged (or serves an allowed
request), never raises, never keeps a descriptor the child passed, and never acts outside its
policy (paths, ports, kernel commands, PKI questions)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ike.daemon import wire_codec
from ike.daemon.privsep import MAX_CERTS, MAX_ID, MAX_MSG, Monitor, PathPolicy, check_bind
from ike.kernel import interface as k
from ike.kernel.fake import FakeKernel

SETTINGS = settings(derandomize=True, max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])  # fmt: skip
FEW = settings(SETTINGS, max_examples=120)

_json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and objects of *inner* values, for the recursive JSON strategy."""
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


_json = st.recursive(_json_leaf, _json_containers, max_leaves=20)
_addr = st.sampled_from(["10.0.0.1", "10.0.0.2", "::1", "fe80::1"]).map(k.address)
_net = st.sampled_from(["10.0.0.0/24", "10.1.0.0/24", "0.0.0.0/0"]).map(k.network)
_selector = st.builds(k.TrafficSelector, _net, _net, st.integers(0, 255), st.integers(0, 65535),
                      st.integers(0, 65535))  # fmt: skip
_commands = st.one_of(
    st.builds(k.GetSPI, _addr, _addr),
    st.builds(k.DeleteSA, st.integers(2, 4), st.integers(256, 2**32 - 1), _addr, _addr),
    st.builds(k.AddFlow, _selector, st.sampled_from(list(k.Direction)), _addr, _addr),
    st.builds(k.DeleteFlow, _selector, st.sampled_from(list(k.Direction))),
    st.builds(k.Flush, everything=st.booleans()),
)


class _Nested(dict[str, Any]):
    """A message nested *depth* deep, with a short repr for hypothesis to print."""

    def __init__(self, depth: int) -> None:
        data: dict[str, Any] = {"__t": "Flush"}
        for _ in range(depth):
            data = {"__t": "DeleteFlow", "selector": data}
        super().__init__(data)
        self.depth = depth

    def __repr__(self) -> str:
        return f"_Nested({self.depth})"


def _mutate(data: Any, path: list[int], replacement: Any) -> Any:
    """*data* with the node that *path* picks (indices into dict items) replaced."""
    if not path or not isinstance(data, dict) or not data:
        return replacement
    keys = sorted(data)
    key = keys[path[0] % len(keys)]
    return {**data, key: _mutate(data[key], path[1:], replacement)}


ALLOWED = (*wire_codec._CLASSES.values(), *wire_codec._ENUMS.values(), bytes, str, int,
           bool, type(None), k.address("1.2.3.4").__class__, k.address("::1").__class__,
           k.network("1.2.3.0/24").__class__, k.network("::/0").__class__)  # fmt: skip


@SETTINGS
@given(
    st.one_of(_json, _commands.map(wire_codec.encode)),
    st.lists(st.integers(0, 7), max_size=4),
    _json,
)
@example(_Nested(3000), [], None)  # found: deep nesting overflowed the stack (RecursionError)
@example(wire_codec.encode(k.TrafficSelector(k.network("10.0.0.0/24"), k.network("10.0.0.0/24"))),
         [2], None)  # found: dst None made __post_init__ raise AttributeError
def test_codec_decodes_or_refuses(data: Any, path: list[int], replacement: Any) -> None:
    """Random and mutated encodings decode to an allowed type or raise CodecError only."""
    for candidate in (data, _mutate(data, path, replacement)):
        try:
            obj = wire_codec.decode(candidate)
        except wire_codec.CodecError as exc:
            assert str(exc)
            event("CodecError")
        else:
            event(type(obj).__name__)
            assert isinstance(obj, ALLOWED)


@SETTINGS
@given(_commands)
def test_codec_round_trips_commands(cmd: object) -> None:
    """What the child encodes the parent decodes unchanged (through JSON, as on the channel)."""
    assert wire_codec.decode(json.loads(json.dumps(wire_codec.encode(cmd)))) == cmd


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[tuple[Monitor, socket.socket, Path]]:
    """A parent serving in this thread over a socket pair; the test plays the child."""
    for name in ("etc", "run", "secret"):
        (tmp_path / name).mkdir()
    (tmp_path / "etc" / "isakmpd.conf").write_text("[General]\n")
    (tmp_path / "secret" / "key").write_text("secret")
    (tmp_path / "run" / "up").symlink_to(tmp_path / "secret" / "key")
    (tmp_path / "etc" / "dirlink").symlink_to(tmp_path / "secret")
    (tmp_path / "run" / "outlink").symlink_to(tmp_path / "secret")
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (parent, child):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * MAX_MSG)
    policy = PathPolicy([str(tmp_path / "etc")], [str(tmp_path / "run")])
    yield Monitor(parent, policy, FakeKernel(), _FakeAuth()), child, tmp_path
    parent.close()
    child.close()


def _served(
    monitor: Monitor, child: socket.socket, packet: bytes, passed: int = 0
) -> dict[str, Any]:
    """Send *packet* as the child (with *passed* descriptors of /dev/null), let the parent
    serve it, return its answer."""
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(passed)]
    try:
        socket.send_fds(child, [packet], fds) if fds else child.send(packet)
    finally:
        for fd in fds:
            os.close(fd)
    assert monitor.serve_one()
    data, fds, _flags, _addr = socket.recv_fds(child, MAX_MSG, 8)
    for fd in fds:
        os.close(fd)
    answer = json.loads(data)
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool)
    return answer


def _open_fds() -> int:
    """How many descriptors this process holds (to see that none leaked)."""
    return len(os.listdir("/proc/self/fd"))


@FEW
@given(
    st.one_of(
        st.binary(min_size=1, max_size=300),
        _json.map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b'{"op": "open", "path": "x"', b"\xff\xfe", b"[" * 100_000, b"1" * 5000,
                         b'{"op": "kernel", "cmd": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                         b'{"op": "init_done"}', b'{"op": "readdir", "path": "/"}']),
    ),
    st.integers(0, 3),
)
@example(b"[" * 100_000, 0)  # found: json.loads raised RecursionError and killed the monitor
def test_monitor_answers_any_packet(
    monitor: tuple[Monitor, socket.socket, Path], packet: bytes, passed: int
) -> None:
    """Any packet from the child gets an answer; anything but a known request is refused, and
    descriptors the child slipped in are closed, never kept."""
    parent, child, _tmp = monitor
    before, open_before = parent.refused, _open_fds()
    answer = _served(parent, child, packet, passed)
    assert _open_fds() == open_before
    try:
        request = json.loads(packet)
    except (ValueError, RecursionError):
        request = None
    if not isinstance(request, dict) or request.get("op") not in ("init_done", "shutdown"):
        assert answer["ok"] is False and parent.refused == before + 1


_segments = st.sampled_from(
    ["..", ".", "", "etc", "run", "secret", "isakmpd.conf", "key", "up", "dirlink", "new",
     "nodir", "\0", "/etc/passwd", "a" * 300]
)  # fmt: skip
_bases = st.sampled_from(
    ["etc", "run", "secret", "etc/dirlink", "run/up", "run/outlink", "run/outlink/..", "", ".."]
)


def _under(path: str, dirs: list[Path]) -> bool:
    """Whether *path* is one of *dirs* or inside one."""
    return any(path == str(d) or path.startswith(f"{d}/") for d in dirs)


@settings(FEW, max_examples=300)
@given(
    st.lists(st.one_of(st.sampled_from(["isakmpd.conf", "new", "key", ""]), _segments), max_size=2),
    st.one_of(st.none(), _bases, _bases, _bases),
    st.sampled_from(["open", "readdir"]),
    st.sampled_from(["r", "w", "rw", None, 1]),
)
def test_monitor_opens_only_within_policy(
    monitor: tuple[Monitor, socket.socket, Path],
    segments: list[str],
    base: str | None,
    op: str,
    mode: object,
) -> None:
    """Whatever path the child names, every descriptor the parent hands back is a file under
    the allowed directories (writable ones only under the run-time directory)."""
    parent, _child, tmp = monitor
    path = "/".join(segments)
    if base is not None:  # most requests name a place in the test's tree, some a relative one
        path = f"{tmp}/{base}/{path}"
    answer, fds = parent.handle({"op": op, "path": path, "mode": mode})
    event(f"{op} ok={answer['ok']} fds={len(fds)}")
    try:
        write = op == "open" and mode == "w"
        allowed = [tmp / "run"] if write else [tmp / "etc", tmp / "run"]
        for fd in fds:
            assert _under(os.readlink(f"/proc/self/fd/{fd}"), allowed)
        assert answer["ok"] is bool(fds) or (op == "readdir" and answer["ok"])
    finally:
        for fd in fds:
            os.close(fd)
    assert (tmp / "secret" / "key").read_text() == "secret"
    assert os.listdir(tmp / "secret") == ["key"]  # nothing created outside the policy either


@FEW
@given(
    st.one_of(
        st.just(socket.AF_INET),
        st.just(socket.AF_INET),
        st.sampled_from([socket.AF_INET6, socket.AF_UNIX, 0, "x", None, 2.5, "2"]),
    ),
    st.one_of(
        st.integers(2, 254).map(lambda n: f"127.0.0.{n}"),
        st.integers(2, 254).map(lambda n: f"127.0.0.{n}"),
        st.sampled_from(["::1", "localhost", "", "127.1", "0.0.0.0\0", "1.2.3.4.5"]),
        st.text(max_size=10),
    ),
    st.one_of(
        st.integers(-5, 70000).map(lambda p: 499 if p == 500 else p),
        st.sampled_from([None, "600", [], "x", 1e9, True]),
    ),
)
def test_monitor_binds_only_allowed_ports(
    monitor: tuple[Monitor, socket.socket, Path], family: object, host: object, port: object
) -> None:
    """A bind request is served only for port 500 or above 1024 on a numeric address of the
    family; anything else is refused (port 500 itself is checked without binding it here)."""
    parent, _child, _tmp = monitor
    answer, fds = parent.handle({"op": "bind", "family": family, "host": host, "port": port})
    event(f"bind ok={answer['ok']}")
    try:
        if answer["ok"]:
            assert len(fds) == 1
            sock = socket.socket(fileno=os.dup(fds[0]))
            with sock:
                assert sock.type == socket.SOCK_DGRAM
                assert sock.getsockname()[1] > 1024
        else:
            assert not fds
    finally:
        for fd in fds:
            os.close(fd)


@SETTINGS
@given(st.integers(), st.integers(-10, 70000), st.text(max_size=40))
def test_check_bind_policy(family: int, port: int, host: str) -> None:
    """check_bind allows exactly port 500 or 1025..65535 on a numeric IPv4/IPv6 address."""
    try:
        check_bind(family, host, port)
    except PermissionError as exc:
        assert str(exc)
    else:
        assert family in (socket.AF_INET, socket.AF_INET6)
        assert port == 500 or 1024 < port <= 65535
        assert "\0" not in host and host.strip() == host


class _FakeAuth:
    """A PKI that records what the parent asked it: the child's input must arrive checked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, object]] = []

    def private_key(self, ident: object) -> None:
        """No key, but the question is kept."""
        self.calls.append(("private_key", ident, None))

    def certificates(self, ident: object) -> list[bytes]:
        """One empty SEQUENCE as the certificate chain; the question is kept."""
        self.calls.append(("certificates", ident, None))
        return [b"\x30\x00"]

    def peer_key(self, ident: object, ders: object) -> None:
        """No key, but the question and the certificates are kept."""
        self.calls.append(("peer_key", ident, ders))


_flush_everything = wire_codec.encode(k.Flush(everything=True))


@FEW
@given(
    st.one_of(st.just("kernel"), st.sampled_from(["kernel", "init_done", "exec", None, 5])),
    st.one_of(
        _json,
        _commands.map(wire_codec.encode),
        st.builds(_mutate, st.just(_flush_everything), st.just([0]),
                  st.sampled_from([1, "yes", {"__b": "00"}, None, 0, "", {"__e": "Direction",
                                                                         "v": 1}])),
    ),
)  # fmt: skip
def test_monitor_kernel_requests_stay_within_policy(
    monitor: tuple[Monitor, socket.socket, Path], op: object, cmd: Any
) -> None:
    """Kernel requests with any command are served or refused, never raise, and no whole-SAD
    flush reaches the kernel whatever the child writes in its ``everything`` field."""
    parent, _child, _tmp = monitor
    assert isinstance(parent.kernel, FakeKernel)
    answer, fds = parent.handle({"op": op, "cmd": cmd})
    event(f"{op} ok={answer['ok']}")
    assert fds == []
    if op not in ("init_done", "kernel"):
        assert answer["ok"] is False
    for done in parent.kernel.commands:
        assert not (isinstance(done, k.Flush) and done.everything)


_AUTH_WHATS = ["private_key", "certificates", "local", "peer_key", "reload"]


@FEW
@given(
    st.sampled_from([*_AUTH_WHATS, "x", None]),
    st.one_of(st.text(max_size=30), st.text(min_size=1000, max_size=1100), _json),
    st.one_of(st.lists(st.sampled_from(["3000", "zz", "", "3"]), max_size=20), _json),
)
@example("peer_key", "", [1000])  # found: a number was taken as the hex certificate "1000"
def test_monitor_auth_requests_reach_the_pki_checked(
    monitor: tuple[Monitor, socket.socket, Path], what: object, ident: Any, certs: Any
) -> None:
    """PKI requests are answered only for known lookups of a string identity of at most MAX_ID
    characters (and for peer_key at most MAX_CERTS hex certificates); the PKI never sees
    anything else."""
    parent, _child, _tmp = monitor
    assert isinstance(parent.auth, _FakeAuth)
    answer, fds = parent.handle({"op": "auth", "what": what, "id": ident, "certs": certs})
    event(f"{what} ok={answer['ok']}")
    assert fds == []
    sound = what in _AUTH_WHATS and isinstance(ident, str) and len(ident) <= MAX_ID
    if what == "peer_key":
        sound = sound and isinstance(certs, list) and len(certs) <= MAX_CERTS and all(
            isinstance(c, str) and len(c) % 2 == 0 and all(x in "0123456789abcdefABCDEF"
                                                           for x in c) for c in certs)
    assert answer["ok"] is sound
    for _what, seen, ders in parent.auth.calls:
        assert isinstance(seen, str) and len(seen) <= MAX_ID
        assert ders is None or (
            isinstance(ders, list) and len(ders) <= MAX_CERTS
            and all(isinstance(d, bytes) for d in ders)
        )  # fmt: skip
