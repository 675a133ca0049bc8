"""FIFO commands against an in-process Daemon (no sockets): their effect on its state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ike.conf import Conf
from ike.daemon import control, fifo
from ike.daemon.log import DebugLevels
from ike.daemon.options import parse_args
from ike.daemon.pcap import PcapWriter
from ike.daemon.runtime import Daemon, DirectFiles
from ike.kernel.none import NoneKernel

CONF = """[General]
Check-interval=\t30
[Phase 2]
Connections=\tconn-a
Passive-connections=\tconn-p
[conn-a]
Phase=\t2
[conn-p]
Phase=\t2
Local-ID=\tnet
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    conf_path = tmp_path / "isakmpd.conf"
    conf_path.write_text(CONF)
    conf_path.chmod(0o600)
    options = parse_args(["-d", "-n", "-K", "-c", str(conf_path), "--run-dir", str(tmp_path)])
    d = Daemon(options, Conf.from_text(CONF, str(conf_path)), DirectFiles(), NoneKernel(),
               DebugLevels())  # fmt: skip
    d.loop = asyncio.new_event_loop()
    d.active = d.connection_names()
    yield d
    d.loop.close()


def test_connections_c_t_and_config_reinit(daemon: Daemon) -> None:
    assert daemon.active == ["conn-a"]
    control.handle(daemon, fifo.Connect("conn-b"))
    control.handle(daemon, fifo.Connect("conn-b"))
    assert daemon.active == ["conn-a", "conn-b"]
    assert daemon._check is not None
    control.handle(daemon, fifo.Teardown("conn-a", 2))
    assert daemon.active == ["conn-b"]
    control.handle(daemon, fifo.ConfigChange("add", "Phase 2", "Connections", "conn-c"))
    assert daemon._reinit is not None  # connection_reinit 5 s later
    daemon.reset_connections()
    assert daemon.active == ["conn-a", "conn-c"]
    control.handle(daemon, fifo.ConfigChange("set", "General", "Foo", "1"))
    assert daemon.conf.get_str("General", "Foo") == "1"
    assert daemon.engine.conf.get_str("General", "Foo") == "1"  # the engine's cache is reset


def test_get_debug_mode_and_reports(daemon: Daemon) -> None:
    control.handle(daemon, fifo.ConfigGet("General", "Check-interval"))
    assert Path(daemon.options.result_path).read_text() == "30\n"
    control.handle(daemon, fifo.ConfigGet("General", "Nothing"))
    assert Path(daemon.options.result_path).read_text() == ""
    control.handle(daemon, fifo.Debug(5, 40))
    control.handle(daemon, fifo.Debug(toggle=True))
    assert daemon.levels.levels[5] == 0
    control.handle(daemon, fifo.Debug(toggle=True))
    assert daemon.levels.levels[5] == 40
    control.handle(daemon, fifo.Mode(passive=True))
    assert daemon.passive_mode
    lines = control.report_lines(daemon)
    kinds = [line.split(":")[0] for line in lines]
    assert kinds.index("connection_report") < kinds.index("conf_report")
    assert "connection_report: passive connection conn-p local_id: net, remote_id: <none>" in lines
    control.handle(daemon, fifo.ReportSAs())
    assert Path(daemon.options.result_path).read_text() == ""  # no SAs yet
    control.report_to_file(daemon)
    assert (
        "Report> conf_report: dumping running configuration"
        in Path(daemon.options.report_path).read_text()
    )


def test_reinit_keeps_the_old_configuration_when_broken(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    Path(daemon.options.config_file).write_text(CONF + "garbage line\n")
    control.reinit(daemon)
    assert "reinit refused" in caplog.text and "syntax error" in caplog.text
    assert daemon.conf.get_num("General", "Check-interval", 0) == 30
    Path(daemon.options.config_file).write_text(CONF.replace("30", "40"))
    control.reinit(daemon)
    assert daemon.conf.get_num("General", "Check-interval", 0) == 40
    assert daemon.engine.conf.get_num("General", "Check-interval", 0) == 40


def test_acquire_only_keeps_flows_out_of_the_kernel(tmp_path: Path) -> None:
    import ipaddress

    from ike.kernel import interface as k
    from ike.kernel.fake import FakeKernel

    options = parse_args(["-d", "-a", "-K", "--run-dir", str(tmp_path)])
    fake = FakeKernel()
    d = Daemon(options, Conf.from_text(CONF), DirectFiles(), fake, DebugLevels())
    a, b = ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2")
    net = ipaddress.ip_network("10.0.0.0/24")
    kernel = d.engine.kernel
    spi = kernel.get_spi(k.GetSPI(a, b))
    kernel.add_flow(k.AddFlow(k.TrafficSelector(net, net), k.Direction.OUT, a, b))
    assert spi and fake.flows == {}
    assert [type(c).__name__ for c in fake.commands] == ["GetSPI"]


def test_reinit_refuses_a_broken_or_readable_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ike.daemon.runtime import load_policy

    policy = tmp_path / "isakmpd.policy"
    policy.write_text('Authorizer: "POLICY"\n')
    policy.chmod(0o600)
    conf_text = CONF.replace("[General]\n", f"[General]\nPolicy-file=\t{policy}\n")
    conf_path = tmp_path / "isakmpd.conf"
    conf_path.write_text(conf_text)
    conf_path.chmod(0o600)
    options = parse_args(["-d", "-n", "-c", str(conf_path), "--run-dir", str(tmp_path)])
    factory = load_policy(str(policy), DirectFiles())
    d = Daemon(options, Conf.from_text(conf_text), DirectFiles(), NoneKernel(), DebugLevels(),
               policy_factory=factory)  # fmt: skip
    d.loop = asyncio.new_event_loop()
    try:
        policy.write_text('Authorizer: "POLICY\n')  # unterminated string
        control.reinit(d)
        assert "reinit refused" in caplog.text and "isakmpd.policy" in caplog.text
        assert d.policy_factory is factory
        policy.write_text('Authorizer: "POLICY"\n')
        policy.chmod(0o640)
        caplog.clear()
        control.reinit(d)
        assert "mode 0640" in caplog.text and d.policy_factory is factory
        policy.chmod(0o600)
        control.reinit(d)
        assert d.policy_factory is not factory
    finally:
        d.loop.close()


def _writer(daemon: Daemon) -> PcapWriter | None:
    return daemon.pcap


def _capturing(daemon: Daemon) -> bool:
    return bool(daemon.engine.capture_cleartext)


def test_a_failing_capture_stops_without_harm(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    control.packet_log(daemon, True)
    writer = _writer(daemon)
    assert writer is not None and _capturing(daemon)
    writer.stream.close()  # as if the disk went away
    daemon._capture(("127.0.0.1", 500), ("127.0.0.1", 501), bytes(28))
    assert _writer(daemon) is None
    assert not _capturing(daemon)
    assert "packet capture stopped" in caplog.text
