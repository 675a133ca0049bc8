"""Fuzzing what the daemon reads from outside: FIFO lines, byte streams and command sequences,
the policy file and the command line (the privilege-separation parent is in
test_fuzz_privsep.py).  Bad input is the module's own error, logged, never a crash, and secrets
typed on the FIFO stay out of the log."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ike.conf import Conf, ConfError
from ike.daemon import control
from ike.daemon import fifo as f
from ike.daemon.log import MAX_LEVEL, DebugLevels
from ike.daemon.options import UsageError, parse_args
from ike.daemon.runtime import Daemon, DirectFiles, load_policy
from ike.kernel.none import NoneKernel

SETTINGS = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FEW = settings(SETTINGS, max_examples=120)

COMMANDS = (
    f.Connect, f.Teardown, f.TeardownAll, f.ConfigChange, f.ConfigGet, f.Delete, f.Debug,
    f.Mode, f.PacketLog, f.Shutdown, f.Reinit, f.Report, f.ReportSAs,
)  # fmt: skip
WS = " \t\n\r\f\v"

# ---------------------------------------------------------------------------------- FIFO lines

_words = st.sampled_from(
    ["set", "add", "rmv", "rm", "rms", "get", "GET", "main", "quick", "on", "off", "on=/x",
     "active", "passive", "A", "T", "-", "00112233445566778899aabbccddeeff", "0a0b0c0d",
     "[General]:Retransmits=5", "[Phase 2]:Connections=a,b", "[S]", "[S]:T", "force", "9" * 5000,
     "-1", "+3", "11", "\0", "\ufffd", "]", "[", ":", "="]
)  # fmt: skip
_field = st.one_of(_words, st.text(max_size=12), st.integers().map(str))
_TEMPLATES = [
    "c {}", "t main {}", "t quick {}", "t {}", "T{}", "C set [{}]:{}={} {}", "C add [{}]:{}={}",
    "C rmv [{}]:{}={}", "C rm [{}]:{}", "C get [{}]:{}", "C rms [{}]", "C {} [{}]:{}={}",
    "d {} {}", "D {} {}", "D A {}", "D T{}", "M {}", "p {}", "p on={}", "Q{}", "R{}", "S{}",
]  # fmt: skip


@st.composite
def _templated(draw: st.DrawFn) -> str:
    """A command line from a template with random fields, sometimes cut or with a stray char."""
    template = draw(st.sampled_from(_TEMPLATES))
    line = template.format(*(draw(_field) for _ in range(template.count("{}"))))
    at = draw(st.integers(0, len(line)))
    mutation = draw(st.sampled_from(["none", "none", "cut", "insert"]))
    if mutation == "cut":
        line = line[:at]
    elif mutation == "insert":
        line = line[:at] + draw(st.characters()) + line[at:]
    return line


fifo_lines = st.one_of(st.text(max_size=300), _templated())


def _check_command(cmd: f.Command) -> None:
    """What the parser promises about the fields it hands on (sizes from its formats)."""
    assert isinstance(cmd, COMMANDS)
    if isinstance(cmd, f.Connect | f.Teardown):
        assert 0 < len(cmd.name) <= 200 and not set(cmd.name) & set(WS)
        if isinstance(cmd, f.Teardown):
            assert cmd.phase in (1, 2)
    elif isinstance(cmd, f.ConfigChange | f.ConfigGet):
        assert 0 < len(cmd.section) <= 200 and "]" not in cmd.section
        assert len(cmd.tag) <= 200
    elif isinstance(cmd, f.Delete):
        assert len(cmd.cookies) == 16
        assert cmd.message_id is None or len(cmd.message_id) == 4
    elif isinstance(cmd, f.Debug):
        assert cmd.level >= 0 and (cmd.cls is None or 0 <= cmd.cls <= 10)
    elif isinstance(cmd, f.PacketLog):
        assert cmd.path is None or 0 < len(cmd.path) <= 197


@SETTINGS
@given(fifo_lines)
@example("D " + "9" * 5000 + " 1")  # found: more digits than int() converts (ValueError)
@example("D 3 " + "9" * 5000)
@example("C set [peer]:Authentication=mekmitasdigoat")
@example("C rm [peer]:Authentication")
def test_parse_line_gives_a_command_or_fifo_error(line: str) -> None:
    """Any line is a well-formed command or a FifoError naming the ui_ function, never a crash."""
    try:
        cmd = f.parse_line(line)
    except f.FifoError as exc:
        assert str(exc).startswith("ui_")
        event("FifoError")
    else:
        event(type(cmd).__name__)
        _check_command(cmd)
        text = f.describe(cmd)
        if isinstance(cmd, f.ConfigChange) and cmd.tag.lower() == "authentication":
            hidden = repr(dataclasses.replace(cmd, value="<secret>" if cmd.value else ""))
            assert text == hidden  # the pre-shared key never reaches the log


@FEW
@given(
    st.sampled_from(["set", "add", "rmv", "rm", "get", "sett", "", "set  "]),
    st.sampled_from(["Authentication", "AUTHENTICATION", "XAUTH-Password", "xauth-password"]),
    st.sampled_from(["=", " ", "= ", "", "=="]),
    st.text("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=20),
    st.sampled_from(["", " force", " x y", "\0", "]"]),
    st.booleans(),
)
@example("sett", "Authentication", "=", "mekmitasdigoat", "", True)  # found: logged whole
def test_secrets_in_fifo_lines_stay_out_of_the_log(
    caplog: pytest.LogCaptureFixture, op: str, tag: str, sep: str, secret: str, suffix: str,
    handler_fails: bool,
) -> None:
    """A pre-shared key or XAUTH password typed on the FIFO, in a good or a malformed line and
    even if carrying the command out fails, never reaches the log (at any level)."""
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    def handler(cmd: f.Command) -> None:
        if handler_fails:
            raise RuntimeError("boom")

    f.FifoReader(-1, handler, owns_fd=False).feed(f"C {op} [peer]:{tag}{sep}{secret}{suffix}\n"
                                                  .encode())
    assert caplog.records
    assert secret not in caplog.text


def _expected(stream: bytes) -> list[f.Command]:
    """The commands a stream holds: whole lines no longer than MAX_LINE that parse."""
    out: list[f.Command] = []
    for raw in stream.split(b"\n")[:-1]:
        if len(raw) > f.MAX_LINE:
            continue
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if line.strip():
            try:
                out.append(f.parse_line(line))
            except f.FifoError:
                pass
    return out


_line_bytes = st.one_of(
    fifo_lines.map(lambda s: s.encode("utf-8", errors="surrogatepass")),
    st.binary(max_size=200),
    st.sampled_from([b"c " + b"x" * 5000, b"D 1 " + b"7" * 4092, b"\xff\xfe\0", b"Q\r"]),
)


@FEW
@given(st.lists(_line_bytes, max_size=8), st.binary(max_size=50), st.data())
@example([b"c " + b"x" * 5000], b"", None)  # found: an over-long line read at once was parsed
def test_reader_survives_any_byte_stream(
    lines: list[bytes], tail: bytes, data: st.DataObject | None
) -> None:
    """Whatever the chunking, the reader hands on the same commands: those of the whole lines
    that are short enough (an over-long one is dropped whole), and never raises."""
    stream = b"\n".join(lines) + (b"\n" if lines else b"") + tail
    cuts: list[int] = []
    if data is not None and stream:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    got: list[f.Command] = []
    reader = f.FifoReader(-1, got.append, owns_fd=False)
    start = 0
    for cut in [*cuts, len(stream)]:
        reader.feed(stream[start:cut])
        start = cut
    assert got == _expected(stream)
    assert reader.errors >= sum(len(raw) > f.MAX_LINE for raw in stream.split(b"\n")[:-1])


@settings(FEW, max_examples=60)
@given(st.lists(_line_bytes, max_size=6), st.lists(st.integers(1, 4096), min_size=1, max_size=4))
def test_reader_on_a_real_fifo(tmp_path: Path, lines: list[bytes], sizes: list[int]) -> None:
    """The same through a FIFO made by create_fifo and read on an event loop: what a writer
    puts in, in writes of any size, comes out as the commands of its short whole lines."""
    path = str(tmp_path / "isakmpd.fifo")
    f.create_fifo(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    stream = b"".join(line + b"\n" for line in lines)
    got: list[f.Command] = []
    loop = asyncio.new_event_loop()
    reader = f.FifoReader.open(path, got.append)
    writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        reader.attach(loop)
        at, turn = 0, 0
        while at < len(stream):
            size = sizes[turn % len(sizes)]
            at += os.write(writer, stream[at : at + size])
            turn += 1
            loop.run_until_complete(asyncio.sleep(0))
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))
    finally:
        os.close(writer)
        reader.close()
        loop.close()
    assert got == _expected(stream)


@settings(FEW, max_examples=30)
@given(st.sampled_from(["none", "fifo", "loose fifo", "file", "dir", "link to file",
                        "link to fifo", "dangling link"]))  # fmt: skip
def test_create_fifo_replaces_only_a_fifo(tmp_path: Path, existing: str) -> None:
    """create_fifo makes a 0600 FIFO where there was none or an old FIFO (whatever its mode),
    and refuses, naming the path, to replace anything else (file, directory, symlink)."""
    base = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh place for every example
    path, target = base / "isakmpd.fifo", base / "target"
    target.write_text("keep")
    if existing in ("fifo", "loose fifo"):
        os.mkfifo(path, 0o666 if existing == "loose fifo" else 0o600)
    elif existing == "file":
        path.write_text("keep")
    elif existing == "dir":
        path.mkdir()
    elif existing == "link to file":
        path.symlink_to(target)
    elif existing == "link to fifo":
        os.mkfifo(base / "other.fifo")
        path.symlink_to(base / "other.fifo")
    elif existing == "dangling link":
        path.symlink_to(base / "nowhere")
    try:
        f.create_fifo(str(path))
    except OSError as exc:
        assert str(path) in str(exc) and existing not in ("none", "fifo", "loose fifo")
        assert os.path.lexists(path) and target.read_text() == "keep"
    else:
        st_mode = os.lstat(path).st_mode
        assert stat.S_ISFIFO(st_mode) and stat.S_IMODE(st_mode) == 0o600
        assert existing in ("none", "fifo", "loose fifo")


def test_reader_survives_a_failing_handler(caplog: pytest.LogCaptureFixture) -> None:
    """A command whose handler raises is logged and the next line is still read."""
    seen: list[f.Command] = []

    def handler(cmd: f.Command) -> None:
        seen.append(cmd)
        if isinstance(cmd, f.Report):
            raise RuntimeError("boom")

    reader = f.FifoReader(-1, handler, owns_fd=False)
    reader.feed(b"r\nT\n")
    assert seen == [f.Report(), f.TeardownAll()]
    assert "failed" in caplog.text


# ---------------------------------------------------------------------------------- policy file

POLICY = (Path(__file__).parents[2] / "policies" / "subpolicies.policy").read_bytes()


@st.composite
def _policy_bytes(draw: st.DrawFn) -> bytes:
    """The shipped sub-policy example, cut short, with stray bytes, or plain garbage."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    at = draw(st.integers(0, len(POLICY)))
    stray = draw(st.sampled_from([b"", b"\0", b"\xff", b'"', b"\n\n", b"(", b"->", b"\\"]))
    return POLICY[:at] + stray + (POLICY[at:] if draw(st.booleans()) else b"")


@settings(FEW, max_examples=60)
@given(_policy_bytes(), st.sampled_from([0o600, 0o400, 0o640, 0o604, 0o000]))
@example(POLICY, 0o600)
def test_policy_file_is_a_session_factory_or_a_conf_error(
    tmp_path: Path, data: bytes, mode: int
) -> None:
    """load_policy on any bytes and permissions gives a working session factory, or a
    ConfError whose message starts with the path (mode or KeyNote syntax), never a crash."""
    path = tmp_path / "isakmpd.policy"
    path.write_bytes(data)
    os.chmod(path, mode)
    try:
        factory = load_policy(str(path), DirectFiles())
    except ConfError as exc:
        assert str(exc).startswith(f"{path}:")
        event("ConfError mode" if mode & 0o077 else "ConfError text")
    else:
        assert not mode & 0o077
        assert factory().query(["false", "true"]).value in ("false", "true")
        event("policy")


# ---------------------------------------------------------------------------------- commands

CONTROL_CONF = """[General]
Check-interval=\t30
[Phase 1]
10.0.0.2=\tpeer
[Phase 2]
Connections=\tconn-a
[peer]
Phase=\t1
Address=\t10.0.0.2
Configuration=\tmain
Authentication=\tsecret
[conn-a]
Phase=\t2
ISAKMP-peer=\tpeer
Configuration=\tquick
Local-ID=\tnet-a
Remote-ID=\tnet-b
[net-a]
ID-type=\tIPV4_ADDR_SUBNET
Network=\t10.1.0.0
Netmask=\t255.255.255.0
[net-b]
ID-type=\tIPV4_ADDR_SUBNET
Network=\t10.2.0.0
Netmask=\t255.255.255.0
[main]
EXCHANGE_TYPE=\tID_PROT
Transforms=\t3DES-SHA
[quick]
EXCHANGE_TYPE=\tQUICK_MODE
Suites=\tQM-ESP-AES-SHA-PFS-SUITE
"""
_sections = st.sampled_from(
    ["General", "Phase 1", "Phase 2", "peer", "conn-a", "net-a", "net-b", "main", "quick", "new",
     "3DES-SHA", "QM-ESP-AES-SHA-PFS-SUITE", "QM-ESP-AES-SHA-PFS-XF", "QM-ESP-AES-SHA-PFS",
     "id-peer", "LIFE_MAIN_MODE", "Default-phase-1-configuration"]
)  # fmt: skip
_tags = st.sampled_from(
    ["Phase", "Address", "ISAKMP-peer", "Configuration", "Local-ID", "Remote-ID", "ID-type",
     "Network", "Netmask", "EXCHANGE_TYPE", "Transforms", "Suites", "Connections",
     "Passive-connections", "Retransmits", "Exchange-max-time", "Check-interval", "Port",
     "Local-address", "Authentication", "Lifetime", "Default-phase-1-lifetime", "10.0.0.2",
     "ENCRYPTION_ALGORITHM", "HASH_ALGORITHM", "AUTHENTICATION_METHOD", "GROUP_DESCRIPTION",
     "KEY_LENGTH", "LIFE_DURATION", "LIFE_TYPE", "Protocols", "PROTOCOL_ID", "TRANSFORM_ID",
     "ENCAPSULATION_MODE", "AUTHENTICATION_ALGORITHM", "ID", "Name", "Flags", "Listen-on",
     "DPD-check-interval", "Default", "Renegotiate-on-HUP", "Use-Keynote", "Policy-file"]
)  # fmt: skip
_conf_values = st.one_of(
    st.sampled_from(
        ["1", "2", "0", "-1", "9" * 40, "abc", "ID_PROT", "AGGRESSIVE", "QUICK_MODE", "3DES-SHA",
         "AES-SHA2-256", "QM-ESP-AES-SHA-PFS-SUITE", "BOGUS-SUITE", "10.0.0.2", "::1", "300.1.1.1",
         "conn-a", "peer", "net-a", "main", "quick", "a,,b", "IPV4_ADDR", "FQDN", "USER_FQDN",
         "IPV6_ADDR_SUBNET", "DER_ASN1_DN", "3600,60:86400", "x:y", "255.255.255.255",
         "MODP_1024", "MODP_2048", "EC2N_155", "-", "yes", "no", "AES_CBC", "3DES_CBC", "SHA",
         "SHA2_512", "PRE_SHARED", "RSA_SIG", "TUNNEL", "TRANSPORT", "UDP_ENCAP_TUNNEL", "128",
         "257", "SECONDS", "KILOBYTES", "IPSEC_ESP", "IPSEC_AH", "IPCOMP", "ESP_AES_GCM_16",
         "HMAC_SHA2_256", "id-peer", "QM-ESP-AES-SHA-PFS-XF", "/nonexistent", "ikecfg"]
    ),
    st.text(st.characters(blacklist_characters=WS), min_size=1, max_size=10),
)  # fmt: skip
_cookie_hex = st.sampled_from(["00112233445566778899aabbccddeeff", "0" * 32])
_control_lines = st.one_of(
    st.builds("c {}".format, st.one_of(_sections, _conf_values)),
    st.builds("t {} {}".format, st.sampled_from(["main", "quick"]),
              st.one_of(_sections, _conf_values)),
    st.builds("C set [{}]:{}={} force".format, _sections, _tags, _conf_values),
    st.builds("C set [{}]:{}={}".format, _sections, _tags, _conf_values),
    st.builds("C add [Phase 2]:Connections={}".format, st.one_of(_sections, _conf_values)),
    st.builds("C rmv [Phase 2]:Connections={}".format, st.one_of(_sections, _conf_values)),
    st.builds("C rm [{}]:{}".format, _sections, _tags),
    st.builds("C rms [{}]".format, _sections),
    st.builds("C get [{}]:{}".format, _sections, _tags),
    st.builds("d {} {}".format, _cookie_hex, st.sampled_from(["-", "00000000", "0a0b0c0d"])),
    st.builds("D {} {}".format, st.integers(-1, 11), st.integers(-1, 2**40)),
    st.sampled_from(["T", "r", "S", "R", "M active", "M passive", "D T", "D A 99", "p off",
                     "p on", "p on=/nonexistent/dir/x.pcap"]),
)  # fmt: skip


@settings(FEW, max_examples=150)
@given(st.lists(_control_lines, min_size=1, max_size=12))
@example(lines=["C set [peer]:Local-address=1 force"])  # found: ValueError out of Phase 1 start
@example(lines=["c \ud800"])  # not UTF-8: the FIFO carries it as raw bytes
def test_command_sequences_never_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, lines: list[str]
) -> None:
    """Any sequence of FIFO commands against a running daemon (connections started after each
    one, timers fired) is carried out or refused in the log, with no exception anywhere: none
    escapes and none is swallowed with a traceback by the daemon's last-resort handlers."""
    conf_path = tmp_path / "isakmpd.conf"
    conf_path.write_text(CONTROL_CONF)
    conf_path.chmod(0o600)
    options = parse_args(["-n", "-K", "-c", str(conf_path), "--run-dir", str(tmp_path)])
    daemon = Daemon(options, Conf.from_text(CONTROL_CONF, str(conf_path)), DirectFiles(),
                    NoneKernel(), DebugLevels())  # fmt: skip
    daemon.loop = asyncio.new_event_loop()
    daemon.active = daemon.connection_names()
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    try:
        for line in lines:
            reader = f.FifoReader(-1, lambda cmd: control.handle(daemon, cmd), owns_fd=False)
            reader.feed(line.encode("utf-8", "surrogatepass") + b"\n")  # bytes, as read
            daemon.check_connections()
            daemon.engine.handle_timer(daemon.now + 3600)
            daemon.pump()
    finally:
        if daemon.pcap is not None:
            daemon.pcap.close()
        daemon.loop.close()
    event(f"sent or dropped: {bool(daemon.stats['dropped'] + daemon.stats['out'])}")
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks


# ---------------------------------------------------------------------------------- command line

_argv_words = st.sampled_from(
    ["-4", "-6", "-a", "-c", "-d", "-dd", "-D", "-D3=99", "-DA=10", "-f", "-h", "-i", "-K", "-L",
     "-l", "-n", "-N", "-p", "-p500", "-P", "-r", "-r0x10", "-R", "-S", "-T", "-v", "--run-dir",
     "--help", "-x", "--bogus", "-", "--", "9" * 5000, "-p" + "9" * 5000, "-D1=" + "9" * 5000]
)  # fmt: skip


@SETTINGS
@given(st.lists(st.one_of(_argv_words, st.text(max_size=12)), max_size=8))
def test_command_line_is_options_or_usage_error(argv: list[str]) -> None:
    """Any argument vector is Options within range or a UsageError naming what is wrong."""
    try:
        options = parse_args(argv)
    except UsageError as exc:
        assert any(w in str(exc) for w in ("option", "argument")), str(exc)
    else:
        assert all(0 <= p <= 65535 for p in (options.port, options.natt_port))
        assert options.local_port is None or 0 <= options.local_port <= 65535
        assert all(0 <= lv <= MAX_LEVEL for lv in options.debug_levels.values())
