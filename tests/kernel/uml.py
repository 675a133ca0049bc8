"""Run a command as root inside a throw-away User-Mode Linux guest (kernel with ESP).

The host kernel may lack ESP (reference/kernel.md 4); Debian's ``user-mode-linux`` package
(/usr/bin/linux.uml, modules in /usr/lib/uml/modules) boots in a couple of seconds with the host
root mounted read-only over hostfs, so our venv and iproute2 run unchanged inside.  One boot
should run many cases: every process start in the guest is slow (ptrace).

    result = run_in_uml([sys.executable, "tests/kernel/uml_esp_scenario.py"], timeout=120)
    result.rc, result.stdout, result.boot_seconds

The guest has no network link to the host; only ``lo`` is up.  Its memory file goes to
/dev/shm.  On timeout the UML process group (which we created) is killed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LINUX_UML = "/usr/bin/linux.uml"
MODULE_ROOT = "/usr/lib/uml/modules"
GUEST = str(Path(__file__).with_name("uml_guest.py"))
GUEST_INIT = str(Path(__file__).with_name("uml_init.sh"))
#: the IPsec set: XFRM, ESP/AH/IPComp (esp6 brings ipv6), veth, and the crypto the suites use
IPSEC_MODULES = [
    "xfrm_user", "esp4", "esp6", "ah4", "xfrm_ipcomp", "ipcomp", "xfrm4_tunnel", "veth", "cbc",
    "ctr", "gcm", "ghash-generic", "ccm", "authenc", "echainiv", "seqiv", "hmac", "sha512_generic",
    "des_generic", "deflate", "cmac", "xcbc", "jitterentropy_rng", "drbg",
]


@dataclass
class UmlResult:
    """What a guest run produced."""

    rc: int
    stdout: str
    stderr: str
    wall_seconds: float
    console: str
    timing: dict[str, object] = field(default_factory=dict)


def available() -> str | None:
    """None if UML runs can work here, else why not (for a skip message)."""
    if os.geteuid() != 0:
        return "needs root (namespaces and XFRM inside the guest)"
    if not os.access(LINUX_UML, os.X_OK) or not glob.glob(f"{MODULE_ROOT}/*/modules.dep"):
        return "needs the Debian package user-mode-linux (/usr/bin/linux.uml)"
    if any(c in GUEST + sys.executable for c in " ,\"'"):
        return "paths with spaces or commas cannot be passed to the UML kernel"
    return None


def run_in_uml(argv: list[str], *, timeout: float = 120, mem: str = "384M",
               modules: list[str] | None = None, cwd: str | None = None) -> UmlResult:
    """Boot UML, run ``argv`` as root inside, power off; the command's output and exit status.

    ``rc`` is 124 if the command timed out inside the guest, 125 if the guest never reported.
    """
    run = tempfile.mkdtemp(prefix="kx-uml-", dir="/tmp")
    try:
        conf = {
            "argv": argv, "cwd": cwd or os.getcwd(), "env": dict(os.environ),
            "timeout": max(timeout - 10, 5), "modules": IPSEC_MODULES if modules is None
            else modules,
        }
        Path(run, "conf.json").write_text(json.dumps(conf))
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else run
        cmdline = [
            LINUX_UML, f"mem={mem}", f"umid=kx{os.getpid()}", f"uml_dir={run}/umldir",
            "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
            f"init={GUEST_INIT}", "con=null", "ssl=null", "con0=null,fd:1", "quiet",
            f"kxpython={sys.executable}", f"kxguest={GUEST}", f"kxrun={run}",
        ]
        start = time.monotonic()
        with open(f"{run}/console.log", "wb") as console:
            proc = subprocess.Popen(cmdline, stdin=subprocess.DEVNULL, stdout=console,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                         "TMPDIR": shm})
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the group we created: UML and helpers
                proc.wait()
        wall = time.monotonic() - start

        def read(name: str) -> str:
            p = Path(run, name)
            return p.read_text(errors="replace") if p.exists() else ""

        rc_text = read("rc").strip()
        timing = json.loads(read("timing.json") or "{}")
        return UmlResult(int(rc_text) if rc_text else 125, read("stdout"), read("stderr"), wall,
                         read("console.log"), timing)
    finally:
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    reason = available()
    if reason:
        sys.exit(f"uml: {reason}")
    res = run_in_uml(sys.argv[1:] or ["true"])
    sys.stdout.write(res.stdout)
    sys.stderr.write(res.stderr)
    print(f"uml: rc={res.rc} wall={res.wall_seconds:.2f}s timing={res.timing}", file=sys.stderr)
    if res.rc == 125:
        print(res.console[-3000:], file=sys.stderr)
    sys.exit(res.rc)
