"""strongSwan 5.9 charon as an IKEv1 peer in one of our namespaces (reference/interop.md 5).

Each instance has its own directory: strongswan.conf, swanctl/ (swanctl.conf, x509, x509ca,
private), the vici socket, the log, and run/ which is bind-mounted on /run inside the
namespace's private mount namespace, because 5.9.8 hard-codes /var/run/charon.pid.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .keylog import CharonKeyLog, parse_charon_log
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
from .netns import HarnessError, Namespace, run

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = shutil.which("swanctl") or "/usr/sbin/swanctl"

PLUGINS = ("random nonce openssl aes sha1 sha2 md5 hmac gmp pem pkcs1 pkcs8 x509 revocation "
           "constraints pubkey kdf curve25519 xcbc cmac ctr ccm gcm socket-default vici")


def available() -> str | None:
    """None when charon and swanctl are installed, else what is missing (for a skip)."""
    if not os.path.exists(CHARON) or not os.path.exists(SWANCTL):
        return "needs Debian packages strongswan-charon and strongswan-swanctl"
    if not os.path.exists("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"):
        return "needs Debian package libcharon-extra-plugins (kernel-libipsec)"
    return None


def _id(value: str) -> str:
    """swanctl identity: FQDNs keep their "@", DNs are quoted."""
    return f'"{value}"' if "=" in value else value


def _child_times(c: Connection) -> str:
    """A child's lifetimes: by default it rekeys at ``ipsec_lifetime`` (charon's own life_time
    and rand_time follow from that); with a ``rekey_margin`` the SA lives ``ipsec_lifetime``
    and charon rekeys it ``rekey_margin`` seconds before that, up to a quarter of it earlier."""
    if not c.rekey_margin:
        return f"rekey_time = {c.ipsec_lifetime}s"
    return (f"rekey_time = {c.ipsec_lifetime - c.rekey_margin}s\n"
            f"                life_time = {c.ipsec_lifetime}s\n"
            f"                rand_time = {max(1, c.rekey_margin // 4)}s")


@dataclass
class CharonPeer(DaemonBase):
    """One charon.  ``ipsec`` is "netlink" (kernel SAs; on a kernel without ESP the CHILD_SA
    install fails, interop.md 5.2) or "libipsec" (userspace ESP over TUN, tunnel mode only,
    always UDP-encapsulated, 5.3).  ``log_level`` is the ike/chd log level (4 dumps keys);
    ``aggressive_psk_ok`` lets it answer Aggressive Mode PSK (its own conns set it too)."""

    name: str
    ns: Namespace
    dir: Path
    conns: list[Connection]
    ipsec: str = "netlink"
    log_level: int = 4
    pki: Pki | None = None
    aggressive_psk_ok: bool = False
    pid: int = 0

    @property
    def log_path(self) -> Path:
        """charon's filelog."""
        return self.dir / "charon.log"

    @property
    def vici(self) -> str:
        """The instance's own vici socket URI."""
        return f"unix://{self.dir}/charon.vici"

    def strongswan_conf(self) -> str:
        """strongswan.conf: only our plugins, our socket, our log (keys at ``log_level``)."""
        plugins = PLUGINS + (" kernel-libipsec kernel-netlink" if self.ipsec == "libipsec"
                             else " kernel-netlink")
        aggressive = "yes" if self.aggressive_psk_ok or any(
            c.aggressive for c in self.conns) else "no"
        return f"""charon {{
    load_modular = no
    load = {plugins}
    port = 500
    port_nat_t = 4500
    install_routes = {"yes" if self.ipsec == "libipsec" else "no"}
    i_dont_care_about_security_and_use_aggressive_mode_psk = {aggressive}
    retransmit_tries = 3
    retransmit_timeout = 2.0
    plugins {{
        vici {{
            socket = {self.vici}
        }}
        kernel-libipsec {{
            allow_peer_ts = no
        }}
    }}
    filelog {{
        main {{
            path = {self.log_path}
            time_format = %H:%M:%S
            ike_name = yes
            append = no
            flush_line = yes
            default = 1
            ike = {self.log_level}
            chd = {self.log_level}
            knl = 2
            cfg = 2
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
        auth {{
            default = -1
        }}
    }}
}}
"""

    def swanctl_conf(self) -> str:
        """swanctl.conf with one IKEv1 connection (and one child of the same name) per
        :class:`Connection`, plus the PSK secrets."""
        parts = ["connections {"]
        secrets = ["secrets {"]
        for i, c in enumerate(self.conns):
            esp = c.suite.charon_esp + (f"-{c.suite.dh}" if c.pfs else "")
            if c.auth == "psk":
                local = f"auth = psk\n            id = {_id(c.local_id)}"
                remote = f"auth = psk\n            id = {_id(c.remote_id)}"
                secrets.append(f"""    ike-{i} {{
        id-local = {_id(c.local_id)}
        id-remote = {_id(c.remote_id)}
        secret = "{c.psk}"
    }}""")
            else:
                if self.pki is None:
                    raise HarnessError(f"{self.name}: RSA connection {c.name} without a PKI")
                local = (f"auth = pubkey\n            certs = {self.pki.cert.name}\n"
                         f"            id = {_id(c.local_id)}")
                remote = f"auth = pubkey\n            id = {_id(c.remote_id)}"
            ts = (f"local_ts = {c.local_ts}\n                remote_ts = {c.remote_ts}"
                  if c.tunnel else "local_ts = dynamic\n                remote_ts = dynamic")
            parts.append(f"""    {c.name} {{
        version = 1
        aggressive = {"yes" if c.aggressive else "no"}
        local_addrs = {c.local}
        remote_addrs = {c.remote}
        proposals = {c.suite.charon_ike}
        encap = no
        dpd_delay = {c.dpd_delay}s
        dpd_timeout = {3 * c.dpd_delay}s
        rekey_time = {c.ike_lifetime}s
        send_cert = {"always" if c.auth != "psk" else "never"}
        unique = no
        local {{
            {local}
        }}
        remote {{
            {remote}
        }}
        children {{
            {c.name} {{
                mode = {"tunnel" if c.tunnel else "transport"}
                esp_proposals = {esp}
                {ts}
                {_child_times(c)}
                start_action = none
            }}
        }}
    }}""")
        parts.append("}")
        secrets.append("}")
        return "\n".join(parts + secrets) + "\n"

    def _env(self) -> dict[str, str]:
        return dict(os.environ, STRONGSWAN_CONF=str(self.dir / "strongswan.conf"),
                    SWANCTL_DIR=str(self.dir / "swanctl"))

    def write_config(self) -> None:
        """Create the instance directory and its configuration files."""
        for sub in ("run", "swanctl/x509", "swanctl/x509ca", "swanctl/private"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "strongswan.conf").write_text(self.strongswan_conf())
        (self.dir / "swanctl" / "swanctl.conf").write_text(self.swanctl_conf())
        if self.pki is not None:
            sw = self.dir / "swanctl"
            shutil.copy(self.pki.cert, sw / "x509" / self.pki.cert.name)
            shutil.copy(self.pki.ca_cert, sw / "x509ca" / self.pki.ca_cert.name)
            shutil.copy(self.pki.key, sw / "private" / self.pki.key.name)

    def launch(self) -> None:
        """Write the configuration and start charon without waiting for it (see :meth:`ready`);
        several peers can so come up at once."""
        self.write_config()
        self.ns.flush_xfrm()
        proc = self.ns.popen([CHARON], log=str(self.dir / "charon.stdout"), env=self._env(),
                             shell_prefix=f'mount --bind "{self.dir}/run" /run')
        self.pid = proc.pid

    def ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait for the vici socket and load the connections with swanctl."""
        sock = self.dir / "charon.vici"
        deadline = time.monotonic() + timeout
        while not sock.exists() and self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not sock.exists():
            out = (self.dir / "charon.stdout").read_text(errors="replace")
            raise HarnessError(f"{self.name}: charon did not open its vici socket: {out}")
        self.swanctl("--load-all", "--noprompt")

    def swanctl(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        """Run swanctl against this instance; its stdout."""
        return run([SWANCTL, *args, "--uri", self.vici], env=self._env(), check=check,
                   timeout=timeout).stdout

    def initiate(self, conn: str, timeout: float = 20) -> bool:
        """``swanctl --initiate --child conn``; True when the CHILD_SA came up."""
        out = run([SWANCTL, "--initiate", "--child", conn, "--timeout", str(int(timeout)),
                   "--uri", self.vici], env=self._env(), check=False, timeout=timeout + 10)
        return out.returncode == 0

    def initiate_ike(self, conn: str, timeout: float = 20) -> bool:
        """``swanctl --initiate --ike conn``: Phase 1 only."""
        out = run([SWANCTL, "--initiate", "--ike", conn, "--timeout", str(int(timeout)),
                   "--uri", self.vici], env=self._env(), check=False, timeout=timeout + 10)
        return out.returncode == 0

    def terminate(self, conn: str) -> None:
        """``swanctl --terminate --ike conn`` (sends DELETEs)."""
        self.swanctl("--terminate", "--ike", conn, "--timeout", "5", check=False)

    def list_sas(self) -> str:
        """Raw ``swanctl --list-sas`` output."""
        return self.swanctl("--list-sas", check=False)

    def ike_sas(self) -> list[IkeSaInfo]:
        """Phase 1 SAs from ``--list-sas`` (``name: #n, STATE, IKEv1, cookie_i cookie_r``)."""
        rx = re.compile(r"^(\S+): #\d+, (\w+), IKEv1, ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r",
                        re.MULTILINE)
        return [IkeSaInfo(m.group(1), m.group(3), m.group(4), m.group(2))
                for m in rx.finditer(self.list_sas())]

    def child_sas(self) -> list[ChildSaInfo]:
        """Phase 2 SAs from ``--list-sas`` (``name: #n, reqid r, STATE, MODE, PROPOSAL``, then
        ``in SPI`` and ``out SPI`` lines)."""
        rx = re.compile(r"^\s+(\S+): #\d+, reqid \d+, (\w+), ([\w-]+), (\S+)\n"
                        r"(?:.*\n)*?\s+in\s+([0-9a-f]{8}).*\n\s+out\s+([0-9a-f]{8})",
                        re.MULTILINE)
        return [ChildSaInfo(m.group(1), m.group(5), m.group(6), m.group(2), m.group(3),
                            m.group(4)) for m in rx.finditer(self.list_sas())]

    def keylog(self) -> CharonKeyLog:
        """The parsed key log so far."""
        return parse_charon_log(self.log_path.read_text(errors="replace"))

    def phase1_keys(self) -> list[Phase1Keys]:
        """Logged Phase 1 keys per IKE_SA, in unique-id order."""
        log = self.keylog()
        return [Phase1Keys(dict(log.ike[uid])) for uid in sorted(log.ike)]

    def esp_keys(self) -> dict[str, EspKeys]:
        """Logged ESP keys by SPI."""
        return self.keylog().esp_keys()

    def stop(self) -> None:
        """Stop our charon by PID."""
        if self.pid:
            stop_pid(self.pid)
            self.pid = 0
