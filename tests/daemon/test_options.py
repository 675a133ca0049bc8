"""Every option of isakmpd(8), plus -N -S -T and the --run-dir extension."""

from __future__ import annotations

import pytest

from ike.daemon.options import Options, UsageError, parse_args


def test_defaults() -> None:
    o = parse_args([])
    assert (o.inet4, o.inet6) == (True, True)
    assert o.config_file == "/etc/isakmpd/isakmpd.conf"
    assert o.fifo_path == "/var/run/isakmpd.fifo"
    assert o.pid_path == "/var/run/isakmpd.pid"
    assert o.report_path == "/var/run/isakmpd.report"
    assert o.result_path == "/var/run/isakmpd.result"
    assert o.pcap_file is None
    assert (o.port, o.natt_port, o.local_port) == (500, 4500, None)
    assert not (o.acquire_only or o.ignore_policy or o.no_kernel or o.passive or o.verbose)
    assert o.nat_t and o.debug == 0 and o.seed is None


@pytest.mark.parametrize(
    ("argv", "attr", "value"),
    [
        (["-4"], "inet6", False),
        (["-6"], "inet4", False),
        (["-a"], "acquire_only", True),
        (["-c", "/x.conf"], "config_file", "/x.conf"),
        (["-c/x.conf"], "config_file", "/x.conf"),
        (["-d"], "debug", 1),
        (["-dd"], "debug", 2),
        (["-f", "-"], "fifo_path", "-"),
        (["-f", "/tmp/f"], "fifo_path", "/tmp/f"),
        (["-i", "/tmp/p"], "pid_path", "/tmp/p"),
        (["-K"], "ignore_policy", True),
        (["-L"], "pcap_file", "/var/run/isakmpd.pcap"),
        (["-l", "/tmp/c.pcap"], "pcap_file", "/tmp/c.pcap"),
        (["-l", "/tmp/c.pcap", "-L"], "pcap_file", "/tmp/c.pcap"),
        (["-n"], "no_kernel", True),
        (["-N", "14500"], "natt_port", 14500),
        (["-p", "1500"], "port", 1500),
        (["-P", "1501"], "local_port", 1501),
        (["-r", "42"], "seed", 42),
        (["-r", "0x10"], "seed", 16),
        (["-R", "/tmp/r"], "report_path", "/tmp/r"),
        (["-S"], "passive", True),
        (["-T"], "nat_t", False),
        (["-v"], "verbose", True),
        (["-h"], "show_help", True),
        (["--run-dir", "/tmp/run"], "result_path", "/tmp/run/isakmpd.result"),
        (["--run-dir", "/tmp/run", "-L"], "pcap_file", "/tmp/run/isakmpd.pcap"),
        (["-nv", "-p1500"], "port", 1500),
    ],
)
def test_each_option(argv: list[str], attr: str, value: object) -> None:
    assert getattr(parse_args(argv), attr) == value


def test_4_and_6_together_mean_both() -> None:
    o = parse_args(["-4", "-6"])
    assert (o.inet4, o.inet6) == (True, True)
    o = parse_args(["-6", "-6"])
    assert (o.inet4, o.inet6) == (False, True)


def test_debug_classes() -> None:
    o = parse_args(["-D", "3=70", "-D", "10=5"])
    assert o.debug_levels == {3: 70, 10: 5}
    o = parse_args(["-D", "A=20", "-D", "0=99"])
    assert o.debug_levels == {**{c: 20 for c in range(11)}, 0: 99}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["-x"], "unknown option -x"),
        (["--frob"], "unknown option --frob"),
        (["-c"], "option -c requires an argument"),
        (["-D", "11=1"], "option -D: class 11 is out of range"),
        (["-D", "3"], "option -D: '3' is not class=level"),
        (["-D", "3=100"], "option -D: level 100"),
        (["-D", "Z=1"], "option -D: class 'Z'"),
        (["-p", "http"], "option -p: port 'http'"),
        (["-p", "70000"], "option -p: port 70000 is out of range"),
        (["-N", "-1"], "option -N"),
        (["-r", "seed"], "option -r: seed 'seed'"),
        (["extra"], "unexpected argument 'extra'"),
    ],
)
def test_bad_options_name_the_option(argv: list[str], words: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_args(argv)
    assert words in str(info.value)


def test_options_is_a_plain_record() -> None:
    assert Options().run_path("x") == "/var/run/isakmpd.x"
