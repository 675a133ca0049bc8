"""Our own daemon as a matrix peer: isakmpd.conf generated from :class:`Connection`s, the
process started in a namespace (``isakmpd -d -v -c conf -f fifo --run-dir dir``), driven through
its FIFO (``c name``, ``t name``), and its SAs read from its log ("phase 1 done", "phase 2
done").

Kernel: ``kernel="xfrm"`` uses the real XFRM backend (User-Mode Linux has ESP);
``kernel="fakesa"`` uses it too, with tests/interop/fakesa.c preloaded so that on a host kernel
without ESP the SA adds are answered in userspace and their keys logged (compared with the
peer's key log); ``kernel="none"`` passes ``-n``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .keylog import parse_fakesa_log
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
)
from .netns import HarnessError, Namespace

DAEMON = [sys.executable, "-c", "import sys; from ike.daemon.cli import main; sys.exit(main())"]
_PHASE1 = re.compile(r"phase 1 done \(as (\w+)\): (\S*) peer (\S+):(\d+), cookies ([0-9a-f]{32})")
_PHASE2 = re.compile(r"phase 2 done: (\S+), SPIs (.*)$", re.MULTILINE)


def _id_section(name: str, ident: str) -> str:
    if ident.startswith("@"):
        return f"[{name}]\nID-type=\t\tFQDN\nName=\t\t\t{ident[1:]}\n"
    if "=" in ident:
        return f"[{name}]\nID-type=\t\tASN1_DN\nName=\t\t\t/{ident.replace(', ', '/')}\n"
    return f"[{name}]\nID-type=\t\tIPV4_ADDR\nAddress=\t\t{ident}\n"


def _net_section(name: str, ts: str) -> str:
    addr, _, plen = ts.partition("/")
    if plen in ("", "32"):
        return f"[{name}]\nID-type=\t\tIPV4_ADDR\nAddress=\t\t{addr}\n"
    bits = int(plen)
    mask = ".".join(str((0xFFFFFFFF << (32 - bits) >> (24 - 8 * i)) & 0xFF) for i in range(4))
    return f"[{name}]\nID-type=\t\tIPV4_ADDR_SUBNET\nNetwork=\t\t{addr}\nNetmask=\t\t{mask}\n"


def qm_suite(c: Connection) -> str:
    """The generated Quick Mode suite section for the connection (reference/isakmpd.md 3.6)."""
    s = c.suite
    trp = "" if c.tunnel else "-TRP"
    pfs = f"-PFS-{s.isakmpd_group}" if c.pfs else ""
    return f"QM-ESP{trp}-{s.isakmpd_esp}{pfs}-SUITE"


@dataclass
class IsakmpdPeer(DaemonBase):
    """One of our daemons.  ``passive`` lists its connections as Passive-Connections (started
    only by :meth:`initiate`) instead of Connections (kept up from the start);
    ``transport_ids`` names the hosts as Quick Mode IDs in transport mode (see conf_text);
    ``policy`` is a KeyNote policy (isakmpd.policy(5)); without one the daemon runs with -K
    (no policy checks); ``extra_args`` go to the command line (e.g. ``-T``)."""

    name: str
    ns: Namespace
    dir: Path
    conns: list[Connection]
    kernel: str = "fakesa"
    pki: Pki | None = None
    passive: bool = True
    transport_ids: bool = True
    policy: str | None = None
    extra_args: list[str] = field(default_factory=list)
    pid: int = 0

    @property
    def log_path(self) -> Path:
        """stderr of the daemon (``-d``)."""
        return self.dir / "isakmpd.log"

    @property
    def fifo(self) -> Path:
        """The FIFO commands are written to."""
        return self.dir / "isakmpd.fifo"

    def conf_text(self) -> str:
        """isakmpd.conf for the connections."""
        first = self.conns[0]
        out = [f"[General]\nListen-on=\t\t{first.local}\nRetransmits=\t\t3\n"
               "Exchange-max-time=\t30\nCheck-interval=\t\t5\n"
               + (f"Policy-file=\t\t{self.dir}/isakmpd.policy\n" if self.policy else "")
               + (f"Default-phase-2-lifetime=\t{first.ipsec_lifetime},10:86400\n"
                  if first.ipsec_lifetime != 1200 else "")]
        if self.pki is not None:
            out.append(f"[X509-certificates]\nCA-directory=\t\t{self.dir}/ca/\n"
                       f"Cert-directory=\t\t{self.dir}/certs/\n"
                       f"Private-key=\t\t{self.dir}/private/local.key\n")
        phase1 = []
        for c in self.conns:
            key = "Default" if c.remote == "%any" else c.remote
            phase1.append(f"{key}=\t\tpeer-{c.name}")
        out.append("[Phase 1]\n" + "\n".join(phase1) + "\n")
        names = ",".join(c.name for c in self.conns)
        tag = "Passive-Connections" if self.passive else "Connections"
        out.append(f"[Phase 2]\n{tag}=\t{names}\n")
        for c in self.conns:
            rsa = c.auth != "psk"
            peer = [f"[peer-{c.name}]", "Phase=\t\t\t1", f"Local-address=\t\t{c.local}",
                    f"Configuration=\t\tp1-{c.name}"]
            if c.remote != "%any":
                peer.append(f"Address=\t\t{c.remote}")
            if not rsa:
                peer.append(f"Authentication=\t\t{c.psk}")
            peer += [f"ID=\t\t\tid-local-{c.name}", f"Remote-ID=\t\tid-remote-{c.name}"]
            out.append("\n".join(peer) + "\n")
            out.append(_id_section(f"id-local-{c.name}", c.local_id))
            out.append(_id_section(f"id-remote-{c.name}", c.remote_id))
            transform = c.suite.isakmpd_transform + ("-RSA_SIG" if rsa else "")
            out.append(f"[p1-{c.name}]\nEXCHANGE_TYPE=\t\t"
                       f"{'AGGRESSIVE' if c.aggressive else 'ID_PROT'}\n"
                       f"Transforms=\t\t{transform}\n")
            conn = [f"[{c.name}]", "Phase=\t\t\t2", f"ISAKMP-peer=\t\tpeer-{c.name}",
                    f"Configuration=\t\tqm-{c.name}"]
            # transport mode: charon sends the two hosts as Quick Mode IDs, pluto sends none;
            # with -K a responder whose IDs differ refuses (INVALID_ID_INFORMATION), so the
            # hosts are named only when ``transport_ids`` says the peer sends them
            local_ts, remote_ts = c.local_ts, c.remote_ts
            if not c.tunnel and self.transport_ids and c.remote != "%any":
                local_ts, remote_ts = f"{c.local}/32", f"{c.remote}/32"
            if local_ts is not None and remote_ts is not None:
                conn += [f"Local-ID=\t\tnet-local-{c.name}", f"Remote-ID=\t\tnet-remote-{c.name}"]
                out.append(_net_section(f"net-local-{c.name}", local_ts))
                out.append(_net_section(f"net-remote-{c.name}", remote_ts))
            out.append("\n".join(conn) + "\n")
            out.append(f"[qm-{c.name}]\nEXCHANGE_TYPE=\t\tQUICK_MODE\nSuites=\t\t\t"
                       f"{qm_suite(c)}\n")
        return "\n".join(out)

    def write_config(self) -> None:
        """The directory, isakmpd.conf (mode 600: the daemon refuses readable ones), PKI."""
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "isakmpd.conf"
        conf.write_text(self.conf_text())
        conf.chmod(0o600)
        if self.policy is not None:
            policy = self.dir / "isakmpd.policy"
            policy.write_text(self.policy)
            policy.chmod(0o600)
        if self.pki is not None:
            for sub in ("ca", "certs", "private"):
                (self.dir / sub).mkdir(exist_ok=True)
            shutil.copy(self.pki.ca_cert, self.dir / "ca" / "ca.crt")
            shutil.copy(self.pki.cert, self.dir / "certs" / "local.crt")
            shutil.copy(self.pki.key, self.dir / "private" / "local.key")
            (self.dir / "private" / "local.key").chmod(0o600)

    def argv(self) -> list[str]:
        """The daemon's command line."""
        args = [*DAEMON, "-d", "-v", "-c", str(self.dir / "isakmpd.conf"), "-f",
                str(self.fifo), "--run-dir", str(self.dir)]
        if self.policy is None:
            args.append("-K")
        if self.kernel == "none":
            args.append("-n")
        return args + self.extra_args

    def launch(self) -> None:
        """Write the configuration and start the daemon in its namespace."""
        self.write_config()
        self.ns.flush_xfrm()
        env = dict(os.environ)
        repo = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = repo + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        prefix = "true"
        if self.kernel == "fakesa":
            from .pluto import ensure_fakesa

            prefix = (f'export LD_PRELOAD="{ensure_fakesa()}" '
                      f'KI_FAKESA_LOG="{self.dir}/fakesa.log"')
        proc = self.ns.popen(self.argv(), log=str(self.log_path), env=env, shell_prefix=prefix,
                             cwd=self.dir)
        self.pid = proc.pid

    def ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait for the FIFO and for the UDP socket on the local address's port 500 (the FIFO
        exists before the sockets are bound; a peer's first packet must not be lost)."""
        deadline = time.monotonic() + timeout
        local = f"{self.conns[0].local}:500"
        while True:
            if self.fifo.exists():
                ss = self.ns.run(["ss", "-Hnlu", "sport", "=", ":500"], check=False).stdout
                if local in ss.split():
                    return
            if time.monotonic() > deadline or not self.alive():
                raise HarnessError(f"{self.name}: isakmpd did not come up: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def command(self, line: str) -> None:
        """Write one FIFO command line."""
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, (line.rstrip("\n") + "\n").encode())
        finally:
            os.close(fd)

    def initiate(self, conn: str, timeout: float = 20) -> bool:
        """``c conn``; True once the log says phase 2 is done for it."""
        before = len(self._phase2(conn))
        self.command(f"c {conn}")
        try:
            self.wait_log(rf"(?s)(phase 2 done: {re.escape(conn)},.*){{{before + 1}}}", timeout)
        except HarnessError:
            return False
        return True

    def terminate(self, conn: str) -> None:
        """``t conn`` (the daemon sends DELETEs)."""
        self.command(f"t {conn}")

    def _log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _phase2(self, conn: str | None = None) -> list[re.Match[str]]:
        return [m for m in _PHASE2.finditer(self._log()) if conn is None or m.group(1) == conn]

    def ike_sas(self) -> list[IkeSaInfo]:
        """Phase 1 SAs the log reports done (cookies from the "phase 1 done" line)."""
        return [IkeSaInfo(m.group(2), m.group(5)[:16], m.group(5)[16:], f"done-{m.group(1)}")
                for m in _PHASE1.finditer(self._log())]

    def child_sas(self) -> list[ChildSaInfo]:
        """Phase 2 SAs the log reports done: ``SPIs 3:in, 3:out`` (incoming first)."""
        out = []
        for m in self._phase2():
            spis = [s.split(":")[1] for s in m.group(2).split(", ") if ":" in s]
            if len(spis) >= 2:
                half = len(spis) // 2
                out.append(ChildSaInfo(m.group(1), spis[0], spis[half], "INSTALLED"))
        return out

    def phase1_keys(self) -> list[Phase1Keys]:
        """The daemon does not log Phase 1 keys."""
        return []

    def esp_keys(self) -> dict[str, EspKeys]:
        """Keys of the SAs the daemon installed: from the fakesa log, or from the kernel's
        ``ip xfrm state`` (xfrm)."""
        if self.kernel == "fakesa":
            path = self.dir / "fakesa.log"
            return parse_fakesa_log(path.read_text()) if path.exists() else {}
        if self.kernel == "xfrm":
            return xfrm_state_keys(self.ns)
        return {}

    def stop(self) -> None:
        """SIGTERM our daemon (it removes what it installed), SIGKILL if it lingers."""
        if self.pid:
            stop_pid(self.pid, timeout=10)
            self.pid = 0


_STATE = re.compile(r"^src \S+ dst \S+\n\s+proto esp spi 0x([0-9a-f]{8}).*?(?=^src |\Z)",
                    re.MULTILINE | re.DOTALL)


def xfrm_state_keys(ns: Namespace) -> dict[str, EspKeys]:
    """ESP keys of the SAs in a namespace's kernel (``ip xfrm state``, keys shown as root)."""
    text = ns.run(["ip", "xfrm", "state"], check=False).stdout
    out = {}
    for m in _STATE.finditer(text):
        body = m.group(0)
        enc = re.search(r"^\s+(?:enc|aead) \S+ 0x([0-9a-f]+)", body, re.MULTILINE)
        auth = re.search(r"^\s+auth(?:-trunc)? \S+ 0x([0-9a-f]+)", body, re.MULTILINE)
        out[m.group(1)] = EspKeys(m.group(1), enc.group(1) if enc else "",
                                  auth.group(1) if auth else "")
    return out
