"""libreswan 4.10 pluto as an IKEv1 peer in one of our namespaces (reference/interop.md 7).

The libreswan package conflicts with strongSwan's, so :func:`ensure_libreswan` fetches it with
``apt-get download`` and unpacks it with ``dpkg-deb -x`` into a cache directory (once per
machine, under a lock so parallel workers share it), installing the runtime libraries it links
against when they are missing.  pluto execs /usr/libexec/ipsec/addconn by absolute path, so the
unpacked libexec is overlaid on /usr/libexec inside the namespace's private mount namespace.
On a kernel without ESP, the fakesa shim (tests/interop/fakesa.c, built here with gcc) answers
pluto's SA installs so that Quick Mode completes (interop.md 7.3).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .keylog import parse_fakesa_log, parse_pluto_log
from .model import (
    READY_TIMEOUT,
    ChildSaInfo,
    Connection,
    DaemonBase,
    EspKeys,
    IkeSaInfo,
    Phase1Keys,
    Pki,
    stop_pid,
    wait_for_log,
)
from .netns import HarnessError, Namespace, run

CACHE = Path(os.environ.get("KI_CACHE", "/var/cache/isakmpd-py-tests"))
ROOT = CACHE / "libreswan" / "root"
PLUTO = ROOT / "usr/libexec/ipsec/pluto"
WHACK = ROOT / "usr/libexec/ipsec/whack"
ADDCONN = ROOT / "usr/libexec/ipsec/addconn"
FAKESA_SRC = Path(__file__).resolve().parent.parent / "fakesa.c"

# What the unpacked pluto/whack/addconn and our NSS set-up need at run time (libreswan's
# Depends minus what every Debian system has); CI installs them in scripts/test.
RUNTIME_PACKAGES = ("libnss3-tools", "libnss3", "libnspr4", "libunbound8", "libldns3",
                    "libevent-core-2.1-7", "libevent-pthreads-2.1-7", "libcurl3-nss",
                    "libcap-ng0", "libldap-2.5-0")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _missing_packages() -> list[str]:
    return [p for p in RUNTIME_PACKAGES
            if run(["dpkg-query", "-W", "-f=${Status}", p], check=False).stdout
            != "install ok installed"]


_ensured: list[Path] = []


def ensure_libreswan() -> Path:
    """Unpack libreswan into the cache (and install missing runtime libraries); the root of
    the unpacked tree (checked once per process).  HarnessError when apt cannot deliver."""
    if _ensured:
        return _ensured[0]
    _ensured.append(_ensure_libreswan())
    return _ensured[0]


def _ensure_libreswan() -> Path:
    if PLUTO.exists() and WHACK.exists() and ADDCONN.exists() and not _missing_packages():
        return ROOT  # nothing to do (and nothing written: the UML guest sees it read-only)
    with _locked(CACHE / "libreswan.lock"):
        missing = _missing_packages()
        if missing:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            got = run(["apt-get", "install", "-y", "-qq", *missing], check=False,
                      timeout=300, env=env)
            if got.returncode != 0:
                run(["apt-get", "update", "-qq"], timeout=300, env=env)
                run(["apt-get", "install", "-y", "-qq", *missing], timeout=300, env=env)
        if PLUTO.exists() and WHACK.exists() and ADDCONN.exists():
            return ROOT
        dl = CACHE / "libreswan"
        dl.mkdir(parents=True, exist_ok=True)
        debs = sorted(dl.glob("libreswan_*.deb"))
        if not debs:
            got = run(["apt-get", "download", "libreswan"], check=False, timeout=300,
                      cwd=dl)
            if got.returncode != 0:
                run(["apt-get", "update", "-qq"], timeout=300)
                run(["apt-get", "download", "libreswan"], timeout=300, cwd=dl)
            debs = sorted(dl.glob("libreswan_*.deb"))
        if not debs:
            raise HarnessError(f"apt-get download libreswan left no .deb in {dl}")
        tmp = dl / "root.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)], timeout=120)
        shutil.rmtree(ROOT, ignore_errors=True)
        tmp.rename(ROOT)
    return ROOT


def ensure_fakesa() -> Path:
    """Build the fakesa shim from tests/interop/fakesa.c (cached by the source's hash)."""
    digest = hashlib.sha256(FAKESA_SRC.read_bytes()).hexdigest()[:16]
    out = CACHE / f"fakesa-{digest}.so"
    with _locked(CACHE / "fakesa.lock"):
        if not out.exists():
            if shutil.which("gcc") is None:
                raise HarnessError("the fakesa shim needs gcc (Debian package gcc)")
            tmp = out.with_suffix(".tmp")
            run(["gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(tmp),
                 str(FAKESA_SRC), "-ldl"], timeout=120)
            tmp.rename(out)
    return out


def fakesa_available() -> str | None:
    """None when the fakesa shim can be built (or is), else why not."""
    digest = hashlib.sha256(FAKESA_SRC.read_bytes()).hexdigest()[:16]
    if shutil.which("gcc") is None and not (CACHE / f"fakesa-{digest}.so").exists():
        return "needs Debian package gcc to build the fakesa shim"
    return None


def available() -> str | None:
    """None when libreswan can be provided here (root, apt, dpkg-deb, gcc for the shim), else
    why not."""
    if os.geteuid() != 0:
        return "needs root (apt-get, namespaces)"
    if fakesa_available() is not None:
        return fakesa_available()
    if PLUTO.exists():
        return None
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return "needs apt-get and dpkg-deb to fetch the Debian package libreswan"
    return None


def _quote(value: str) -> str:
    return f'"{value}"' if ("=" in value or " " in value) else value


@dataclass
class PlutoPeer(DaemonBase):
    """One pluto with its own rundir, ipsecdir, NSS db and secrets; connections as given.

    ``fake_sa`` preloads the shim (needed for Quick Mode on a kernel without ESP; leave it off
    in UML where the kernel has ESP).  ``keylog`` sets plutodebug "base crypt private", which
    logs secrets (test keys only)."""

    name: str
    ns: Namespace
    dir: Path
    conns: list[Connection]
    fake_sa: bool = True
    keylog: bool = True
    pki: Pki | None = None
    impair: str | None = None
    pid: int = 0

    @property
    def log_path(self) -> Path:
        """pluto's log file."""
        return self.dir / "pluto.log"

    @property
    def ctl(self) -> Path:
        """The whack control socket of this instance."""
        return self.dir / "run" / "pluto.ctl"

    def ipsec_conf(self) -> str:
        """ipsec.conf: IKEv1 allowed, our log, one conn per :class:`Connection`."""
        debug = "base crypt private" if self.keylog else "base"
        out = [f"""config setup
    logfile={self.log_path}
    logappend=no
    logtime=yes
    plutodebug="{debug}"
    dumpdir={self.dir}/run
    protostack=xfrm
    dnssec-enable=no
    uniqueids=no
    ikev1-policy=accept
"""]
        for c in self.conns:
            s = c.suite
            # pluto 4.10 refuses an ECP group in an IKEv1 phase2alg ("ESP DH algorithm 'dh19'
            # is not supported by IKEv1"); with pfs=yes and no group it uses the Phase 1 group
            esp = s.pluto_esp + (f";{s.pluto_dh}" if c.pfs and "dh" not in s.pluto_dh else "")
            lines = [f"conn {c.name}", "    ikev2=no",
                     f"    aggressive={'yes' if c.aggressive else 'no'}",
                     f"    authby={'secret' if c.auth == 'psk' else 'rsasig'}",
                     f"    left={c.local}", f"    leftid={_quote(c.local_id)}",
                     "    leftupdown=%disabled",
                     f"    right={c.remote}", f"    rightid={_quote(c.remote_id)}",
                     f"    type={'tunnel' if c.tunnel else 'transport'}",
                     f"    ike={s.pluto_ike}", "    phase2=esp", f"    phase2alg={esp}",
                     f"    pfs={'yes' if c.pfs else 'no'}", "    encapsulation=auto",
                     f"    ikelifetime={c.ike_lifetime}s", f"    salifetime={c.ipsec_lifetime}s",
                     "    auto=add"]
            if c.tunnel:
                lines += [f"    leftsubnet={c.local_ts}", f"    rightsubnet={c.remote_ts}"]
            if c.auth != "psk":
                lines += ["    leftcert=ki-own", "    leftsendcert=always", "    rightca=%same"]
            if c.rekey_margin:
                # rekey at the lifetime less margin * (1 + up to 25 %): a small spread only
                lines += [f"    rekeymargin={c.rekey_margin}s", "    rekeyfuzz=25%"]
            if c.dpd_delay:
                lines += [f"    dpddelay={c.dpd_delay}", f"    dpdtimeout={3 * c.dpd_delay}",
                          "    dpdaction=clear"]
            out.append("\n".join(lines) + "\n")
        return "\n".join(out)

    def secrets(self) -> str:
        """ipsec.secrets: PSKs by ID pair (so a NATed peer's private ID matches too)."""
        return "".join(f'{_quote(c.local_id)} {_quote(c.remote_id)} : PSK "{c.psk}"\n'
                       for c in self.conns if c.auth == "psk")

    def write_config(self) -> None:
        """Directories, ipsec.conf, ipsec.secrets, and the NSS database (with the PKI)."""
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        nss = self.dir / "nss"
        nss.mkdir(exist_ok=True)
        (self.dir / "ipsec.conf").write_text(self.ipsec_conf())
        secrets = self.dir / "ipsec.secrets"
        secrets.write_text(self.secrets())
        secrets.chmod(0o600)
        run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"])
        if self.pki is not None:
            # the bundle's friendly name "ki-own" becomes the NSS nickname leftcert= names
            run(["pk12util", "-i", str(self.pki.p12), "-d", f"sql:{nss}", "-W",
                 self.pki.p12_password])
            run(["certutil", "-A", "-n", "ki-ca", "-t", "CT,,", "-i", str(self.pki.ca_cert),
                 "-d", f"sql:{nss}"])

    def launch(self) -> None:
        """Write the configuration and start pluto (see :meth:`ready`)."""
        ensure_libreswan()
        preload = str(ensure_fakesa()) if self.fake_sa else ""
        self.write_config()
        self.ns.flush_xfrm()
        argv = [str(PLUTO), "--nofork", "--config", str(self.dir / "ipsec.conf"),
                "--rundir", str(self.dir / "run"), "--ipsecdir", str(self.dir),
                "--nssdir", str(self.dir / "nss"), "--secretsfile",
                str(self.dir / "ipsec.secrets"), "--listen", self.conns[0].local,
                "--no-dnssec", "--logfile", str(self.log_path)]
        if self.impair:
            argv += ["--impair", self.impair]
        prefix = (f'mount -t overlay none -o "lowerdir={ROOT}/usr/libexec:/usr/libexec" '
                  "/usr/libexec")
        if preload:
            prefix += f' && export LD_PRELOAD="{preload}" KI_FAKESA_LOG="{self.dir}/fakesa.log"'
        proc = self.ns.popen(argv, log=str(self.dir / "pluto.stdout"), shell_prefix=prefix)
        self.pid = proc.pid

    def ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait for the control socket, then listen, add the conns, read the secrets."""
        deadline = time.monotonic() + timeout
        while not self.ctl.exists():
            if time.monotonic() > deadline or not self.alive():
                out = (self.dir / "pluto.stdout").read_text(errors="replace")
                raise HarnessError(f"{self.name}: pluto did not come up: {out[-2000:]}")
            time.sleep(0.05)
        # the socket file appears at bind(), before pluto listens on it: a loaded machine
        # showed whack's connect() refused there ("is Pluto running?", exit 33)
        while True:
            got = run([str(WHACK), "--ctlsocket", str(self.ctl), "--listen"], check=False)
            if got.returncode == 0:
                break
            if time.monotonic() > deadline or not self.alive() or "is Pluto running" not in (
                    got.stderr + got.stdout):
                raise HarnessError(f"{self.name}: whack --listen exit {got.returncode}: "
                                   f"{(got.stderr or got.stdout).strip()}")
            time.sleep(0.05)
        # pluto runs addconn itself at start-up (the conns are auto=add), which deletes and
        # re-adds each conn; left to run late on a loaded machine it deleted "ki" under our own
        # initiate (the STATE_AGGR_I1 state went, whack --initiate failed), so wait for it
        wait_for_log(self.log_path, r"reaped addconn helper child",
                     max(deadline - time.monotonic(), 1.0))
        for c in self.conns:
            got = run([str(ADDCONN), "--config", str(self.dir / "ipsec.conf"), "--ctlsocket",
                       str(self.ctl), c.name], check=False)
            if got.returncode != 0:
                why = re.findall(rf'"{re.escape(c.name)}": failed to add connection: .*',
                                 self.log_path.read_text(errors="replace"))
                raise HarnessError(f"{self.name}: addconn {c.name} exit {got.returncode}: "
                                   f"{why[-1] if why else got.stdout + got.stderr}")
        self.whack("--rereadsecrets")

    def whack(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        """Run whack against this instance's control socket; its output."""
        return run([str(WHACK), "--ctlsocket", str(self.ctl), *args], check=check,
                   timeout=timeout).stdout

    def initiate(self, conn: str, timeout: float = 20) -> bool:
        """``whack --initiate --name conn``; True when the IPsec SA is established."""
        try:
            proc = subprocess.run([str(WHACK), "--ctlsocket", str(self.ctl), "--initiate",
                                   "--name", conn], capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0 and "IPsec SA established" in proc.stdout

    def terminate(self, conn: str) -> None:
        """``whack --terminate --name conn`` (sends DELETEs)."""
        self.whack("--terminate", "--name", conn, check=False)

    def status(self) -> str:
        """Raw ``whack --status``."""
        return self.whack("--status", check=False)

    def ike_sas(self) -> list[IkeSaInfo]:
        """Established ISAKMP SAs from ``whack --status`` (``#1: "conn":500 STATE_MAIN_R3
        (IKE SA established)``); pluto does not print the cookies there."""
        rx = re.compile(r'^\d* ?#\d+: "([^"]+)"\S* (STATE_\w+) \((?:IKE|ISAKMP) SA '
                        r"established\)", re.MULTILINE)
        return [IkeSaInfo(m.group(1), "", "", m.group(2)) for m in rx.finditer(self.status())]

    def child_sas(self) -> list[ChildSaInfo]:
        """Installed IPsec SAs from ``whack --status`` (``esp.SPI@peer esp.SPI@us``)."""
        rx = re.compile(r'#\d+: "([^"]+)"[^\n]*?esp\.([0-9a-f]+)@\S+ esp\.([0-9a-f]+)@\S+')
        out = []
        for m in rx.finditer(self.status()):
            out.append(ChildSaInfo(m.group(1), m.group(3).rjust(8, "0"),
                                   m.group(2).rjust(8, "0"), "INSTALLED"))
        return out

    def phase1_keys(self) -> list[Phase1Keys]:
        """pluto keeps SKEYID* inside NSS and logs none (interop.md 7.4)."""
        return []

    def keymats(self) -> dict[str, str]:
        """KEYMAT (enc || integ) by SPI from the log."""
        return {k.spi: k.keymat for k in
                parse_pluto_log(self.log_path.read_text(errors="replace"))}

    def esp_keys(self, enc_len: int = 16) -> dict[str, EspKeys]:
        """ESP keys by SPI: the KEYMAT cut after ``enc_len`` bytes (16 for AES-128)."""
        return {k.spi: k.split(enc_len) for k in
                parse_pluto_log(self.log_path.read_text(errors="replace"))}

    def installed_keys(self) -> dict[str, EspKeys]:
        """Keys pluto handed the kernel (through the fakesa shim's log), by SPI."""
        path = self.dir / "fakesa.log"
        return parse_fakesa_log(path.read_text()) if path.exists() else {}

    def stop(self) -> None:
        """whack --shutdown, then stop our PID."""
        if self.pid:
            if self.alive():
                try:
                    subprocess.run([str(WHACK), "--ctlsocket", str(self.ctl), "--shutdown"],
                                   capture_output=True, timeout=5, check=False)
                except subprocess.TimeoutExpired:
                    pass
            stop_pid(self.pid)
            self.pid = 0
