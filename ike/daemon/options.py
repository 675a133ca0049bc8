"""The isakmpd(8) command line: every option of the man page, plus OpenBSD's newer -N, -S, -T.

The option letters and defaults are the reference's (getopt ``"46ac:dD:f:i:KnN:p:P:Ll:r:R:STv"``).
One extension, ``--run-dir DIR``, moves the default run-time files (FIFO, pid, report, result and
capture) from ``/var/run`` to *DIR*, so that a daemon can run without root (the demo, the tests).
"""

from __future__ import annotations

import getopt
from dataclasses import dataclass, field

from ike.daemon.log import DEBUG_CLASSES, parse_debug_spec

PROG = "isakmpd"
USAGE = (
    "usage: isakmpd [-46adKLnSTv] [-c config-file] [-D class=level] [-f fifo]\n"
    "               [-i pid-file] [-l packetlog-file] [-N udpencap-port]\n"
    "               [-p listen-port] [-P local-port] [-r seed] [-R report-file]\n"
    "               [--run-dir dir]\n"
)
HELP = (
    USAGE
    + """
  -4 / -6            use only IPv4 / only IPv6 (default: both)
  -a                 do not set up flows (acquire only)
  -c config-file     configuration (default /etc/isakmpd/isakmpd.conf)
  -d                 stay in the foreground, log to stderr, SIGINT shuts down cleanly
                     (-dd: both processes stop after the fork until SIGCONT to the
                     parent, for a debugger; SIGINT then just ends them)
  -D class=level     debug class 0-10 or A (all) to level 0-99; may be repeated
  -f fifo            the command FIFO (default /var/run/isakmpd.fifo); - for stdin
  -i pid-file        where to write the PID (default /var/run/isakmpd.pid)
  -K                 no KeyNote policy file, no policy checks
  -L                 capture cleartext IKE to /var/run/isakmpd.pcap
  -l packetlog-file  capture cleartext IKE to this file
  -n                 the kernel takes no part: no SAs or flows are installed
  -N udpencap-port   the NAT-T (UDP encapsulation) port (default 4500)
  -p listen-port     the ISAKMP port (default 500)
  -P local-port      the local port used when initiating
  -r seed            deterministic random numbers from this seed
  -R report-file     the SIGUSR1 report file (default /var/run/isakmpd.report)
  -S                 passive mode (no exchanges initiated, no DELETEs at shutdown)
  -T                 disable NAT-Traversal
  -v                 log every completed phase 1 and phase 2 exchange
  --run-dir dir      default directory of the run-time files instead of /var/run
"""
)
_SHORT = "46ac:dD:f:hi:KLl:nN:p:P:r:R:STv"


class UsageError(Exception):
    """A command line the daemon cannot run with; the message says which option and why."""


@dataclass
class Options:
    """The parsed command line."""

    inet4: bool = True
    inet6: bool = True
    acquire_only: bool = False
    config_file: str = "/etc/isakmpd/isakmpd.conf"
    debug: int = 0
    debug_levels: dict[int, int] = field(default_factory=dict)
    fifo: str | None = None
    pid_file: str | None = None
    ignore_policy: bool = False
    pcap_file: str | None = None
    no_kernel: bool = False
    natt_port: int = 4500
    port: int = 500
    local_port: int | None = None
    seed: int | None = None
    report_file: str | None = None
    passive: bool = False
    nat_t: bool = True
    verbose: bool = False
    run_dir: str = "/var/run"
    show_help: bool = False

    def run_path(self, name: str) -> str:
        """The default path of a run-time file, ``<run-dir>/isakmpd.<name>``."""
        return f"{self.run_dir.rstrip('/') or ''}/isakmpd.{name}"

    @property
    def fifo_path(self) -> str:
        """The FIFO to read commands from (``-`` is standard input)."""
        return self.fifo if self.fifo is not None else self.run_path("fifo")

    @property
    def pid_path(self) -> str:
        """Where the PID goes."""
        return self.pid_file if self.pid_file is not None else self.run_path("pid")

    @property
    def report_path(self) -> str:
        """Where SIGUSR1 writes the report."""
        return self.report_file if self.report_file is not None else self.run_path("report")

    @property
    def result_path(self) -> str:
        """Where ``S`` and ``C get`` write their result."""
        return self.run_path("result")

    @property
    def default_pcap_path(self) -> str:
        """The capture file of ``-L`` and ``p on``."""
        return self.run_path("pcap")


def _port(opt: str, text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise UsageError(f"option {opt}: port {text!r} is not a number") from None
    if not 0 <= value <= 65535:
        raise UsageError(f"option {opt}: port {value} is out of range 0-65535")
    return value


def parse_args(argv: list[str]) -> Options:
    """Parse the arguments after the program name; raise UsageError naming the bad option."""
    try:
        pairs, rest = getopt.getopt(argv, _SHORT, ["run-dir=", "help"])
    except getopt.GetoptError as exc:
        if exc.opt and "requires argument" in exc.msg:
            raise UsageError(f"option -{exc.opt} requires an argument") from None
        opt = exc.opt if exc.opt else "?"
        dash = "--" if len(opt) > 1 else "-"
        raise UsageError(f"unknown option {dash}{opt}") from None
    if rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    o = Options()
    families: set[str] = set()
    for opt, arg in pairs:
        if opt in ("-4", "-6"):
            families.add(opt)  # OR-ed, as bind_family; neither means both
        elif opt == "-a":
            o.acquire_only = True
        elif opt == "-c":
            o.config_file = arg
        elif opt == "-d":
            o.debug += 1
        elif opt == "-D":
            try:
                cls, level = parse_debug_spec(arg)
            except ValueError as exc:
                raise UsageError(f"option -D: {exc}") from None
            for c in range(len(DEBUG_CLASSES)) if cls is None else (cls,):
                o.debug_levels[c] = level
        elif opt == "-f":
            o.fifo = arg
        elif opt in ("-h", "--help"):
            o.show_help = True
        elif opt == "-i":
            o.pid_file = arg
        elif opt == "-K":
            o.ignore_policy = True
        elif opt == "-L":
            o.pcap_file = o.pcap_file or ""
        elif opt == "-l":
            o.pcap_file = arg
        elif opt == "-n":
            o.no_kernel = True
        elif opt == "-N":
            o.natt_port = _port(opt, arg)
        elif opt == "-p":
            o.port = _port(opt, arg)
        elif opt == "-P":
            o.local_port = _port(opt, arg)
        elif opt == "-r":
            try:
                o.seed = int(arg, 0)
            except ValueError:
                raise UsageError(f"option -r: seed {arg!r} is not a number") from None
        elif opt == "-R":
            o.report_file = arg
        elif opt == "-S":
            o.passive = True
        elif opt == "-T":
            o.nat_t = False
        elif opt == "-v":
            o.verbose = True
        elif opt == "--run-dir":
            o.run_dir = arg
    if families:
        o.inet4, o.inet6 = "-4" in families, "-6" in families
    if o.pcap_file == "":
        o.pcap_file = o.default_pcap_path
    return o
