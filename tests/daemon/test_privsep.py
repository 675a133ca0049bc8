"""Privilege separation: the parent checks and logs every request; the child is confined."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ike.daemon import wire_codec
from ike.daemon.monitored import MonitorKernel
from ike.daemon.privsep import (
    Monitor,
    MonitorClient,
    MonitorError,
    PathPolicy,
    check_bind,
)
from ike.kernel import interface as k
from ike.kernel.none import NoneKernel


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    etc = tmp_path / "etc"
    run = tmp_path / "run"
    etc.mkdir()
    run.mkdir()
    (etc / "isakmpd.conf").write_text("[General]\n")
    (etc / "certs").mkdir()
    (etc / "certs" / "a.crt").write_text("cert")
    return etc, run


@pytest.fixture
def pair(dirs: tuple[Path, Path]) -> Iterator[tuple[MonitorClient, Monitor]]:
    etc, run = dirs
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    monitor = Monitor(parent, PathPolicy([str(etc)], [str(run)]), NoneKernel())
    thread = threading.Thread(target=monitor.serve, daemon=True)
    thread.start()
    yield MonitorClient(child), monitor
    child.close()
    thread.join(timeout=5)
    parent.close()


def test_path_policy(dirs: tuple[Path, Path]) -> None:
    etc, run = dirs
    policy = PathPolicy([str(etc)], [str(run)])
    assert policy.check(str(etc / "isakmpd.conf"), write=False) == str(etc / "isakmpd.conf")
    assert policy.check(str(run / "new.result"), write=True) == str(run / "new.result")
    assert policy.check(str(run / "x"), write=False)
    for path, write in [
        (str(etc / "isakmpd.conf"), True),  # /etc/isakmpd is read-only
        ("/etc/passwd", False),
        (str(etc / ".." / "run" / ".." / ".." / "outside"), False),
        (str(run / "nodir" / "x"), True),
        ("", False),
    ]:
        with pytest.raises(PermissionError):
            policy.check(path, write)
    (run / "link").symlink_to("/etc/passwd")
    with pytest.raises(PermissionError):
        policy.check(str(run / "link"), write=False)


@pytest.mark.parametrize(
    ("family", "host", "port", "ok"),
    [
        (socket.AF_INET, "127.0.0.1", 500, True),
        (socket.AF_INET, "127.0.0.1", 1025, True),
        (socket.AF_INET6, "::1", 4500, True),
        (socket.AF_INET, "127.0.0.1", 25, False),
        (socket.AF_INET, "127.0.0.1", 1024, False),
        (socket.AF_INET, "127.0.0.1", 0, False),
        (socket.AF_INET, "::1", 1500, False),
        (socket.AF_UNIX, "x", 1500, False),
        (socket.AF_INET, "localhost", 1500, False),
    ],
)
def test_check_bind(family: int, host: str, port: int, ok: bool) -> None:
    if ok:
        check_bind(family, host, port)
    else:
        with pytest.raises(PermissionError):
            check_bind(family, host, port)


def test_open_allowed_and_forged_requests_refused_and_logged(
    pair: tuple[MonitorClient, Monitor], dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, monitor = pair
    etc, run = dirs
    caplog.set_level(logging.WARNING, logger="ike.daemon.privsep")
    with client.open(str(etc / "isakmpd.conf")) as f:
        assert f.read() == b"[General]\n"
    with client.open(str(run / "isakmpd.result"), write=True) as f:
        f.write(b"ok\n")
    assert (run / "isakmpd.result").read_text() == "ok\n"
    assert (run / "isakmpd.result").stat().st_mode & 0o777 == 0o600
    with pytest.raises(MonitorError, match="refused"):
        client.open("/etc/shadow")
    with pytest.raises(MonitorError, match="refused"):
        client.open(str(etc / "isakmpd.conf"), write=True)
    with pytest.raises(MonitorError, match="port 25 not allowed"):
        client.bind("127.0.0.1", 25)
    with pytest.raises(MonitorError, match="unknown request"):
        client.raw_request({"op": "exec", "argv": ["/bin/sh"]})
    with pytest.raises(MonitorError, match="refused"):
        client.raw_request({"op": "kernel", "cmd": {"__t": "Popen", "args": "sh"}})
    with pytest.raises(MonitorError, match="not allowed"):
        client.kernel(k.Flush(everything=True))
    with pytest.raises(MonitorError, match="refused"):
        client.raw_request({"op": "bind", "family": "x", "port": []})
    with pytest.raises(MonitorError, match="refused"):
        client.raw_request({"op": "auth", "what": "private_key", "id": "x"})  # no PKI here
    assert monitor.refused == 8
    text = caplog.text
    assert "/etc/shadow" in text and "port 25" in text and "exec" in text


def test_bind_and_readdir_and_kernel(
    pair: tuple[MonitorClient, Monitor], dirs: tuple[Path, Path]
) -> None:
    client, _monitor = pair
    etc, _run = dirs
    sock = client.bind("127.0.0.1", 50500)
    try:
        assert sock.getsockname() == ("127.0.0.1", 50500)
        assert sock.type == socket.SOCK_DGRAM
    finally:
        sock.close()
    files = client.readdir(str(etc / "certs"))
    assert list(files) == ["a.crt"]
    assert files["a.crt"].read() == b"cert"
    files["a.crt"].close()
    spi = client.kernel(
        k.GetSPI(ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2"))
    )
    assert isinstance(spi, int) and spi >= k.IPSEC_SPI_LOW


def test_codec_round_trip_and_refusals() -> None:
    net_a, net_b = ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("10.1.0.0/24")
    sel = k.TrafficSelector(net_a, net_b, 6, 0, 80)
    cmd = k.AddSA(3, 0x1234, ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2"),
                  True, 12, 2, 128, b"k" * 16, b"a" * 20, True, sel,
                  encap=k.NatTEncap(original_address=ipaddress.ip_address("1.2.3.4")))  # fmt: skip
    data = json.loads(json.dumps(wire_codec.encode(cmd)))
    assert wire_codec.decode(data) == cmd
    flow = k.AddFlow(sel, k.Direction.OUT, cmd.src, cmd.dst)
    assert wire_codec.decode(json.loads(json.dumps(wire_codec.encode(flow)))) == flow
    for bad in (
        {"__t": "AddSA", "nonsense": 1},
        {"__t": "os.system"},
        {"__e": "Signals", "v": 9},
        [1, 2],
        {"__t": "DeleteSA", "proto": 3, "spi": 1, "src": {"__a": "bad"}, "dst": None},
    ):
        with pytest.raises(wire_codec.CodecError):
            wire_codec.decode(bad)


CHILD_SCRIPT = textwrap.dedent(
    """
    import json, logging, os, sys
    from ike.daemon.privsep import PathPolicy, MonitorError, start
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    etc, run, empty = sys.argv[1:4]
    split = start(PathPolicy([etc], [run]), lambda: None, lambda status: None,
                  chroot_dir=empty)
    out = {"uid": os.getuid(), "euid": os.geteuid(), "chrooted": split.chrooted,
           "sees_etc": os.path.exists("/etc/passwd")}
    for name, call in [("shadow", lambda: split.client.open("/etc/shadow")),
                       ("port25", lambda: split.client.bind("127.0.0.1", 25))]:
        try:
            call()
            out[name] = "allowed"
        except MonitorError as exc:
            out[name] = str(exc)
    with split.client.open(etc + "/isakmpd.conf") as f:
        out["conf"] = f.read().decode()
    print(json.dumps(out), flush=True)
    """
)


def test_forked_child_is_confined(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    etc, run = dirs
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_SCRIPT, str(etc), str(run), str(empty)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "refused" in out["shadow"] and "port 25 not allowed" in out["port25"]
    assert out["conf"] == "[General]\n"
    assert "refused open request" in proc.stderr and "refused bind request" in proc.stderr
    if os.geteuid() == 0:
        assert out["uid"] != 0 and out["euid"] != 0
        assert out["chrooted"] is True
        assert out["sees_etc"] is False
    else:
        assert out["chrooted"] is False
        assert "not running as root" in proc.stderr


def _kernel_channel(dirs: tuple[Path, Path]) -> tuple[
        socket.socket, socket.socket, Monitor, MonitorKernel, list[k.KernelEvent]]:
    """A monitor on one end of a channel, the child's MonitorKernel on the other, and the
    list its event handler fills."""
    etc, run = dirs
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    monitor = Monitor(parent, PathPolicy([str(etc)], [str(run)]), NoneKernel())
    kernel = MonitorKernel(MonitorClient(child))
    got: list[k.KernelEvent] = []
    kernel.set_event_handler(got.append)
    return parent, child, monitor, kernel, got


def test_kernel_events_reach_the_child(dirs: tuple[Path, Path]) -> None:
    parent, child, monitor, kernel, got = _kernel_channel(dirs)
    a, b = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")
    expire = k.Expire(3, 0x1234, a, b, hard=False)
    monitor.send_event(expire)
    assert kernel.dispatch() is True
    assert got == [expire]
    # an event that arrives while a request waits for its answer is kept for later
    sel = k.TrafficSelector(
        ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("10.1.0.0/24")
    )
    acquire = k.Acquire(7, sel, sel, a, b, 3)
    monitor.send_event(acquire)
    thread = threading.Thread(target=monitor.serve_one)
    thread.start()
    spi = kernel.get_spi(k.GetSPI(a, b))
    thread.join(timeout=5)
    assert spi >= k.IPSEC_SPI_LOW and got == [expire]
    kernel.deliver()
    assert got == [expire, acquire]
    parent.close()
    assert kernel.dispatch() is False
    child.close()


def test_an_event_taken_off_the_channel_by_a_request_is_delivered_from_the_loop(
        dirs: tuple[Path, Path]) -> None:
    """A kernel event read while a request waited leaves the channel empty: nothing would
    wake the child's reader, and the event (a hard expiry, an ACQUIRE) waited for the next
    unrelated message -- 11 s in a UML run, the daemon's SIGTERM and SA deletions with it.
    Attached to its loop, the child delivers it right after the engine call that asked."""
    import asyncio

    parent, child, monitor, kernel, got = _kernel_channel(dirs)
    a, b = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")
    expire = k.Expire(3, 0x1234, a, b, hard=True)

    async def scenario() -> list[list[k.KernelEvent]]:
        kernel.attach(asyncio.get_running_loop())
        monitor.send_event(expire)  # waits on the channel ahead of the request's answer
        thread = threading.Thread(target=monitor.serve_one)
        thread.start()
        kernel.get_spi(k.GetSPI(a, b))
        thread.join(timeout=5)
        during = list(got)  # not inside the call that made the request
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return [during, list(got)]

    assert asyncio.run(scenario()) == [[], [expire]]
    parent.close()
    child.close()


def test_a_reader_woken_for_a_message_a_request_already_took_does_not_block(
        dirs: tuple[Path, Path]) -> None:
    """The loop found the channel readable, but a datagram's handling earlier in the same
    iteration made a request whose wait read the message: the reader's dispatch must return
    at once.  It used to block in recv until the parent's next message -- in a UML run the
    responder sat 2 s and then 11 s there, Quick Mode HASH(3)s and its SIGTERM waiting."""
    parent, child, monitor, kernel, got = _kernel_channel(dirs)
    a, b = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")
    expire = k.Expire(3, 0x1234, a, b, hard=True)
    monitor.send_event(expire)
    thread = threading.Thread(target=monitor.serve_one)
    thread.start()
    kernel.get_spi(k.GetSPI(a, b))  # reads the event, then its answer: the channel is empty
    thread.join(timeout=5)
    reader = threading.Thread(target=kernel.dispatch, daemon=True)
    reader.start()
    reader.join(timeout=2)
    blocked = reader.is_alive()
    parent.close()  # frees a blocked reader (end of file)
    reader.join(timeout=5)
    assert not blocked
    assert got == [expire]  # and what the request had queued is delivered
    child.close()


class _KeySource:
    """A parent-side PKI with one local ID whose key can be replaced."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.new_key = lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self.key = self.new_key()
        self.calls: list[str] = []

    def private_key(self, ident: str) -> object:
        self.calls.append("key")
        return self.key if ident == "me" else None

    def certificates(self, ident: str) -> list[bytes]:
        self.calls.append("certs")
        return [b"cert-of-" + ident.encode()]


def test_signing_key_and_certificates_in_one_request_parsed_once(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cryptography.hazmat.primitives import serialization

    from ike.daemon.monitored import MonitorAuth

    etc, run = dirs
    source = _KeySource()
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    monitor = Monitor(parent, PathPolicy([str(etc)], [str(run)]), NoneKernel(), auth=source)
    thread = threading.Thread(target=monitor.serve, daemon=True)
    thread.start()
    caplog.set_level(logging.DEBUG)
    client = MonitorClient(child)
    requests: list[str] = []
    real_request = client.raw_request
    monkeypatch.setattr(client, "raw_request",
                        lambda m: requests.append(m["what"]) or real_request(m))
    parsed: list[int] = []
    real_load = serialization.load_der_private_key
    monkeypatch.setattr(serialization, "load_der_private_key",
                        lambda *a, **kw: parsed.append(1) or real_load(*a, **kw))
    auth = MonitorAuth(client)
    try:
        for _phase1 in range(3):  # what a signature Phase 1 asks: key, then certificates
            key = auth.private_key("me")
            assert auth.certificates("me") == [b"cert-of-me"]
            assert key is not None
            assert key.private_numbers() == source.key.private_numbers()
        assert requests == ["local"] * 3 and len(parsed) == 1
        source.key = source.new_key()  # the parent's key changed (a reload): sent and parsed
        assert auth.private_key("me").private_numbers() == source.key.private_numbers()
        assert len(parsed) == 2
        assert auth.private_key("other") is None and auth.certificates("other") == [
            b"cert-of-other"]
        with pytest.raises(MonitorError, match="refused"):  # the parent still checks the ID
            client.raw_request({"op": "auth", "what": "local", "id": 7})
    finally:
        child.close()
        thread.join(timeout=5)
        parent.close()
    der = source.key.private_bytes(serialization.Encoding.DER,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()).hex()
    assert der not in caplog.text and der[:40] not in caplog.text


def test_publish_renames_the_finished_file_over_and_nothing_else(
    pair: tuple[MonitorClient, Monitor], dirs: tuple[Path, Path]
) -> None:
    client, monitor = pair
    etc, run = dirs
    result = run / "isakmpd.result"
    result.write_text("old\n")
    with client.open(str(run / "isakmpd.result.tmp"), write=True) as f:
        f.write(b"new\n")
    assert result.read_text() == "old\n"  # a reader still has the whole old file
    client.publish(str(result))
    assert result.read_text() == "new\n"
    assert sorted(p.name for p in run.iterdir()) == ["isakmpd.result"]
    with pytest.raises(MonitorError, match="refused"):
        client.publish(str(etc / "isakmpd.conf"))  # not a directory the child may write
    (run / "x.tmp").mkdir()
    with pytest.raises(MonitorError, match="not a regular file"):
        client.publish(str(run / "x"))
    with pytest.raises(MonitorError, match="No such file"):
        client.publish(str(run / "never-written"))
    assert monitor.refused == 2


def test_a_delete_of_what_the_kernel_already_removed_is_no_warning(
    dirs: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The engine deletes a whole bundle after the kernel's own hard expiry took one SA: the
    parent answers the ESRCH quietly, and still warns about a request that really failed."""
    from ike.kernel.fake import FakeKernel

    etc, run = dirs
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    monitor = Monitor(parent, PathPolicy([str(etc)], [str(run)]), FakeKernel())
    thread = threading.Thread(target=monitor.serve, daemon=True)
    thread.start()
    client = MonitorClient(child)
    a, b = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")
    caplog.set_level(logging.DEBUG, logger="ike.daemon.privsep")
    try:
        with pytest.raises(MonitorError, match="No such process"):
            client.kernel(k.DeleteSA(3, 0x1234, a, b))
        assert "already gone" in caplog.text
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        add = k.AddSA(3, 0x1234, a, b, False, 12, enc_key=b"k" * 16)
        client.kernel(add)
        with pytest.raises(MonitorError, match="SA exists"):
            client.kernel(add)
        assert [r.levelno for r in caplog.records if "request failed" in r.getMessage()] == [
            logging.WARNING]
    finally:
        child.close()
        thread.join(timeout=5)
        parent.close()
