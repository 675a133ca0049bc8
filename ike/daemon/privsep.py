"""Privilege separation (isakmpd's ``monitor.c``, reference/isakmpd.md 7).

:func:`start` forks.  The privileged parent ("monitor [priv]") keeps root and serves the child's
requests over a ``SOCK_SEQPACKET`` socket pair: opening files (only under the allowed
directories; writes only under the run-time directories), binding UDP sockets (only port 500 or
above 1024), and talking to the kernel.  Every request is checked and logged; a refused one gets
an error answer.  The child runs the protocol: as root it becomes the unprivileged user
(``_isakmpd``, created when missing) inside an empty chroot directory; without root it keeps the
split but cannot chroot or change user, and says so.

Messages are JSON; file descriptors travel as SCM_RIGHTS.  Kernel commands use
:mod:`ike.daemon.wire_codec`, never pickle.  The child's kernel backend and key source that
use this channel are in :mod:`ike.daemon.monitored`.
"""

from __future__ import annotations

import array
import asyncio
import errno
import hashlib
import json
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ike.daemon import wire_codec
from ike.daemon.log import NOTICE
from ike.kernel import interface as k

log = logging.getLogger("ike.daemon.privsep")

PRIVSEP_USER = "_isakmpd"
CHROOT_DIR = "/var/empty"
MAX_MSG = 1 << 19
"""The largest request or answer: room for a chain of certificates in hex."""
ALLOWED_PORT = 500
MAX_ID = 1024
MAX_CERTS = 16
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)



def _already_gone(exc: k.KernelError) -> bool:
    """A delete of an SA or flow the kernel no longer has (its own hard expiry took it)."""
    return (isinstance(exc.command, k.DeleteSA | k.DeleteFlow)
            and exc.errno in (errno.ESRCH, errno.ENOENT))

class MonitorError(Exception):
    """A request the parent refused or could not serve; the message says which and why."""


@dataclass
class PathPolicy:
    """Where the child may read and write through the parent."""

    read_dirs: list[str] = field(default_factory=lambda: ["/etc/isakmpd"])
    write_dirs: list[str] = field(default_factory=lambda: ["/var/run"])

    def check(self, path: str, write: bool) -> str:
        """The canonical path if the request is allowed; raise PermissionError otherwise."""
        if not path or "\0" in path:
            raise PermissionError("empty or invalid path")
        absolute = os.path.abspath(path)
        real = os.path.realpath(absolute)
        if not os.path.exists(real):
            parent = os.path.realpath(os.path.dirname(absolute))
            if not os.path.isdir(parent):
                raise PermissionError(f"{path}: directory does not exist")
            real = os.path.join(parent, os.path.basename(absolute))
        allowed = self.write_dirs if write else self.read_dirs + self.write_dirs
        for directory in allowed:
            base = os.path.realpath(directory)
            if real == base or real.startswith(base.rstrip("/") + "/"):
                return real
        what = "write" if write else "read"
        raise PermissionError(f"{path}: not under a directory allowed for {what}")


def check_bind(family: int, host: str, port: int) -> None:
    """Refuse binds other than UDP port 500 or above 1024 (isakmpd.8 CAVEATS)."""
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise PermissionError(f"address family {family} not allowed")
    if not (port == ALLOWED_PORT or 1024 < port <= 65535):
        raise PermissionError(f"port {port} not allowed (only 500 or above 1024)")
    try:
        socket.inet_pton(family, host)
    except (OSError, ValueError):
        raise PermissionError(f"{host!r} is not a numeric address of that family") from None


# --------------------------------------------------------------------------- the parent


class Monitor:
    """The privileged side: serves requests from the child until it goes away."""

    def __init__(
        self,
        sock: socket.socket,
        paths: PathPolicy,
        kernel: k.KernelBackend | None = None,
        auth: Any = None,
    ) -> None:
        self.sock = sock
        self.paths = paths
        self.kernel = kernel
        self.auth = auth
        """The PKI key source (pki.PKIAuth) the parent answers ``auth`` requests from."""
        self.refused = 0

    def handle(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        """Check and serve one request; return the answer and the descriptors to pass."""
        op = request.get("op")
        try:
            if op == "open":
                return self._open(str(request.get("path", "")), request.get("mode") == "w")
            if op == "publish":
                return self._publish(str(request.get("path", "")))
            if op == "bind":
                return self._bind(request)
            if op == "readdir":
                return self._readdir(str(request.get("path", "")))
            if op == "kernel":
                return self._kernel(request.get("cmd")), []
            if op == "auth":
                return self._auth(request), []
            if op in ("init_done", "shutdown"):
                log.debug("monitor: child says %s", op)
                return {"ok": True}, []
            raise PermissionError(f"unknown request {op!r}")
        except (PermissionError, wire_codec.CodecError) as exc:
            self.refused += 1
            log.warning("monitor: refused %s request: %s", op, exc)
            return {"ok": False, "error": f"refused: {exc}"}, []
        except (OSError, k.KernelError) as exc:
            if isinstance(exc, k.KernelError) and _already_gone(exc):
                # the engine deletes what the kernel may have expired itself: no news
                log.debug("monitor: %s request: already gone: %s", op, exc)
            else:
                log.warning("monitor: %s request failed: %s", op, exc)
            return {"ok": False, "error": str(exc)}, []
        except Exception as exc:  # a malformed field: refuse, never die, always answer
            self.refused += 1
            log.warning("monitor: refused %s request: %s: %s", op, type(exc).__name__, exc)
            return {"ok": False, "error": f"refused: {type(exc).__name__}"}, []

    def _open(self, path: str, write: bool) -> tuple[dict[str, Any], list[int]]:
        real = self.paths.check(path, write)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC if write else os.O_RDONLY
        fd = os.open(real, flags | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        log.debug("monitor: opened %s for %s", real, "writing" if write else "reading")
        return {"ok": True}, [fd]

    def _publish(self, path: str) -> tuple[dict[str, Any], list[int]]:
        real = self.paths.check(path, write=True)
        tmp = self.paths.check(path + ".tmp", write=True)
        if not stat.S_ISREG(os.lstat(tmp).st_mode):
            raise PermissionError(f"{path}.tmp is not a regular file")
        os.replace(tmp, real)
        return {"ok": True}, []

    def _bind(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        family = int(request.get("family", 0))
        host = str(request.get("host", ""))
        port = int(request.get("port", -1))
        check_bind(family, host, port)
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
            if self.kernel is not None:
                self.kernel.bypass_socket(sock)
                if request.get("encap"):
                    self.kernel.enable_udp_encap(sock)
            fd = os.dup(sock.fileno())
        finally:
            sock.close()
        log.debug("monitor: bound %s port %d", host, port)
        return {"ok": True}, [fd]

    def _readdir(self, path: str) -> tuple[dict[str, Any], list[int]]:
        real = self.paths.check(path, write=False)
        names: list[str] = []
        fds: list[int] = []
        for name in sorted(os.listdir(real))[:200]:
            full = os.path.join(real, name)
            if not os.path.isfile(full):
                continue
            try:
                self.paths.check(full, write=False)
                fds.append(os.open(full, os.O_RDONLY | os.O_CLOEXEC))
                names.append(name)
            except (PermissionError, OSError):
                continue
        return {"ok": True, "names": names}, fds

    def _kernel(self, data: object) -> dict[str, Any]:
        if self.kernel is None:
            raise PermissionError("no kernel backend in the monitor")
        cmd = wire_codec.decode(data)
        if not isinstance(cmd, k.GetSPI | k.AddSA | k.DeleteSA | k.QuerySA | k.AddFlow
                          | k.DeleteFlow | k.Flush):  # fmt: skip
            raise PermissionError(f"{type(cmd).__name__} is not a kernel command")
        if isinstance(cmd, k.Flush) and cmd.everything:
            raise PermissionError("flushing the whole SAD/SPD is not allowed")
        result = k.execute(self.kernel, cmd)
        return {"ok": True, "result": wire_codec.encode(result)}

    def _auth(self, request: dict[str, Any]) -> dict[str, Any]:
        """PKI lookups for the chrooted child: the parent reads keys and certificates."""
        if self.auth is None:
            raise PermissionError("no PKI in the monitor")
        what = request.get("what")
        ident = request.get("id")
        if not isinstance(ident, str) or len(ident) > MAX_ID:
            raise PermissionError("bad identity")
        log.debug("monitor: child asks for %s of %s", what, ident)
        if what == "private_key":
            key = self.auth.private_key(ident)
            if key is None:
                return {"ok": True, "der": None}
            der = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return {"ok": True, "der": der.hex()}
        if what == "certificates":
            return {"ok": True, "certs": [bytes(c).hex() for c in self.auth.certificates(ident)]}
        if what == "local":
            return self._local(ident, request.get("have"))
        if what == "peer_key":
            certs = request.get("certs", [])
            if (not isinstance(certs, list) or len(certs) > MAX_CERTS
                    or not all(isinstance(c, str) for c in certs)):
                raise PermissionError("bad certificate list")
            ders = [bytes.fromhex(str(c)) for c in certs]
            peer = self.auth.peer_key(ident, ders)
            if peer is None:
                return {"ok": True, "peer": None}
            spki = peer.public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return {"ok": True, "peer": {
                "spki": spki.hex(), "principals": list(peer.principals),
                "subject_dn": str(getattr(peer, "subject_dn", "") or ""),
            }}  # fmt: skip
        if what == "reload":
            store = getattr(self.auth, "store", None)
            problems = store.reload() if store is not None else []
            return {"ok": True, "problems": [str(p) for p in problems]}
        raise PermissionError(f"unknown auth request {what!r}")

    def _local(self, ident: str, have: object) -> dict[str, Any]:
        """Key and certificates of one local ID in one answer (a signature Phase 1 needs both).
        The key goes by its public fingerprint, its DER only when the child's copy (``have``)
        is not that key, so an unchanged key is neither sent nor re-parsed."""
        assert self.auth is not None
        certs = [bytes(c).hex() for c in self.auth.certificates(ident)]
        key = self.auth.private_key(ident)
        if key is None:
            return {"ok": True, "key": None, "certs": certs}
        fingerprint = _fingerprint(key)
        answer: dict[str, Any] = {"ok": True, "key": fingerprint, "certs": certs}
        if have != fingerprint:
            answer["der"] = key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).hex()
        return answer

    def send_event(self, event: k.KernelEvent) -> None:
        """Forward a kernel event to the child."""
        send_message(self.sock, {"event": wire_codec.encode(event)})

    def serve_one(self) -> bool:
        """Answer one request; False once the child has closed its end."""
        try:
            request, passed = recv_message(self.sock)
        except (ConnectionError, OSError):
            return False
        except ValueError as exc:
            self.refused += 1
            log.warning("monitor: refused a malformed request: %s", exc)
            send_message(self.sock, {"ok": False, "error": f"refused: malformed ({exc})"})
            return True
        for fd in passed:  # the child has no business passing descriptors
            os.close(fd)
        if request is None:
            return False
        answer, fds = self.handle(request)
        try:
            send_message(self.sock, answer, fds)
        except OSError:
            return False
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def serve(self) -> None:
        """Answer requests until the child closes its end."""
        while self.serve_one():
            pass


# --------------------------------------------------------------------------- the channel


def _fingerprint(key: rsa.RSAPrivateKey) -> str:
    """A private key's name that says nothing secret: SHA-256 of its public key (SPKI)."""
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def channel() -> tuple[socket.socket, socket.socket]:
    """The parent's and the child's ends: one message per packet, buffers for MAX_MSG."""
    pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in pair:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * MAX_MSG)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2 * MAX_MSG)
    return pair


def send_message(
    sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None
) -> None:
    """Send one JSON message (and descriptors) as one packet."""
    data = json.dumps(message).encode()
    if len(data) > MAX_MSG:
        raise ValueError("message too large")
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.sendall(data)


_FD_SIZE = array.array("i").itemsize


def recv_message(sock: socket.socket, *, wait: bool = True
                 ) -> tuple[dict[str, Any] | None, list[int]]:
    """Receive one message; (None, []) at end of file.  With ``wait=False`` an empty channel
    raises BlockingIOError instead of blocking."""
    # recvmsg itself: socket.recv_fds drops its flags argument (CPython 3.11)
    data, ancdata, _flags, _addr = sock.recvmsg(
        MAX_MSG, socket.CMSG_LEN(64 * _FD_SIZE), 0 if wait else socket.MSG_DONTWAIT)
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % _FD_SIZE])
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    try:
        try:
            message = json.loads(data)
        except RecursionError:  # "[[[[...": nested too deep for the JSON parser
            raise ValueError("message nested too deeply") from None
        if not isinstance(message, dict):
            raise ValueError("message is not an object")
    except ValueError:
        for fd in fds:
            os.close(fd)
        raise
    return message, list(fds)


# --------------------------------------------------------------------------- the child


class MonitorClient:
    """The child's side: asks the parent for files, sockets and kernel work."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending_events: list[k.KernelEvent] = []
        self.on_queued: Callable[[], None] | None = None
        """Called when an event is queued: one that came in while a request waited for its
        answer leaves nothing on the channel to wake the reader, so it must be scheduled."""

    def _request(self, message: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        send_message(self.sock, message)
        while True:
            answer, fds = recv_message(self.sock)
            if answer is None:
                raise MonitorError("the privileged parent went away")
            if "event" in answer:
                self._queue_event(answer["event"])
                continue
            if not answer.get("ok"):
                for fd in fds:
                    os.close(fd)
                raise MonitorError(str(answer.get("error", "refused")))
            return answer, fds

    def _queue_event(self, data: object) -> None:
        try:
            event = wire_codec.decode(data)
        except wire_codec.CodecError as exc:
            log.warning("monitor client: bad event: %s", exc)
            return
        self.pending_events.append(event)
        if self.on_queued is not None:
            self.on_queued()

    def open(self, path: str, write: bool = False) -> BinaryIO:
        """Open *path* through the parent (``rb`` or ``wb``)."""
        _answer, fds = self._request({"op": "open", "path": path, "mode": "w" if write else "r"})
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise MonitorError(f"{path}: no descriptor received")
        return os.fdopen(fds[0], "wb" if write else "rb")

    def publish(self, path: str) -> None:
        """Have the parent rename the finished ``path.tmp`` over *path*."""
        self._request({"op": "publish", "path": path})

    def bind(self, host: str, port: int, encap: bool = False) -> socket.socket:
        """A UDP socket bound by the parent to (host, port)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        request = {"op": "bind", "family": family, "host": host, "port": port, "encap": encap}
        _answer, fds = self._request(request)
        if len(fds) != 1:
            raise MonitorError("bind: no descriptor received")
        return socket.socket(fileno=fds[0])

    def readdir(self, path: str) -> dict[str, BinaryIO]:
        """The regular files of a directory, opened by the parent."""
        answer, fds = self._request({"op": "readdir", "path": path})
        names = answer.get("names", [])
        return {str(n): os.fdopen(fd, "rb") for n, fd in zip(names, fds, strict=False)}

    def kernel(self, cmd: object) -> object:
        """Run one kernel command in the parent; return its result."""
        answer, _fds = self._request({"op": "kernel", "cmd": wire_codec.encode(cmd)})
        return wire_codec.decode(answer.get("result"))

    def notify(self, what: str) -> None:
        """Tell the parent ``init_done`` or ``shutdown``."""
        self._request({"op": what})

    def raw_request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send any request (tests use it to forge requests); raise MonitorError if refused."""
        answer, fds = self._request(message)
        for fd in fds:
            os.close(fd)
        return answer


def ensure_user(name: str = PRIVSEP_USER) -> pwd.struct_passwd:
    """The unprivileged user, created as a system user without login when missing (root)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", CHROOT_DIR,
         "--shell", shell, name],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    try:  # another daemon starting at the same moment may have created it first
        user = pwd.getpwnam(name)
    except KeyError:
        raise MonitorError(
            f"cannot create the unprivileged user {name}: {done.stderr.strip()}"
        ) from None
    if done.returncode == 0:
        log.warning("privsep: created the unprivileged user %s", name)
    return user


def ensure_empty_dir(path: str) -> None:
    """The chroot directory: exists, owned by root, not writable by others, and empty."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    st = os.stat(path)
    if st.st_uid != 0 or st.st_mode & 0o022:
        raise MonitorError(f"{path}: must be owned by root and not writable by others")
    if os.listdir(path):
        raise MonitorError(f"{path}: chroot directory is not empty")


def drop_privileges(user: pwd.struct_passwd, root_dir: str) -> None:
    """Chroot to *root_dir* and become *user* for good (setgroups/setresgid/setresuid)."""
    os.chroot(root_dir)
    os.chdir("/")
    os.setgroups([user.pw_gid])
    os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise MonitorError("privileges could not be dropped")


@dataclass
class Split:
    """What :func:`start` returns in the child."""

    client: MonitorClient
    parent_pid: int
    chrooted: bool


def start(
    paths: PathPolicy,
    kernel_factory: Callable[[], k.KernelBackend | None],
    on_parent_exit: Callable[[int], None],
    preload: Callable[[], None] = lambda: None,
    chroot_dir: str = CHROOT_DIR,
    auth: Any = None,
    debug: int = 0,
) -> Split:
    """Fork into the monitor and the child; returns only in the child.

    The parent serves requests, forwards TERM, HUP and USR1 to the child, and when the child
    ends calls *on_parent_exit* with its exit status (to remove the FIFO and pid file) and exits.
    *preload* runs in the child before the chroot (imports, syslog) since files vanish after it.
    With ``-dd`` (*debug* > 1) both processes stop themselves (SIGSTOP) once split, for a
    debugger to attach: a SIGCONT to the parent continues it, and it continues the child
    (isakmpd's ``monitor_init``).  *debug* also says what SIGINT does (see ``_sigint``).
    """
    parent_sock, child_sock = channel()
    is_root = os.geteuid() == 0
    user = ensure_user() if is_root else None
    if is_root:
        ensure_empty_dir(chroot_dir)
    sys.stdout.flush()
    sys.stderr.flush()
    # signals wait until the monitor can forward them (the child takes them at once)
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    pid = os.fork()
    if pid == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
        parent_sock.close()
        preload()
        if user is not None:
            drop_privileges(user, chroot_dir)
            log.log(NOTICE, "privsep: child runs as %s (uid %d) chrooted to %s",
                     user.pw_name, user.pw_uid, chroot_dir)  # fmt: skip
        else:
            log.warning(
                "privsep: not running as root: the child keeps uid %d, no chroot", os.getuid()
            )
        if debug > 1:
            log.log(NOTICE, "monitor_init: stopped child PID %d fd %d", os.getpid(),
                    child_sock.fileno())
            os.kill(os.getpid(), signal.SIGSTOP)
        return Split(MonitorClient(child_sock), os.getppid(), user is not None)
    child_sock.close()
    if debug > 1:
        log.log(NOTICE, "monitor_init: stopped priv PID %d fd %d, waiting for SIGCONT",
                os.getpid(), parent_sock.fileno())
        os.kill(os.getpid(), signal.SIGSTOP)
        os.kill(pid, signal.SIGCONT)
    _run_parent(pid, parent_sock, paths, kernel_factory, on_parent_exit, auth, debug)
    raise SystemExit(0)  # not reached: _run_parent exits


def _sigint(debug: int) -> Any:
    """The monitor's SIGINT disposition.  isakmpd makes SIGINT a clean shutdown only with
    exactly one ``-d``; otherwise (daemonised, or ``-dd``) it keeps the default action and ^C
    kills both processes at once, no DELETEs sent.  With ``-d`` the monitor ignores it here:
    the child shuts down cleanly on the same ^C and the monitor follows it out."""
    return signal.SIG_IGN if debug == 1 else signal.SIG_DFL


def _reap(child: int, grace: float = 3.0) -> int:
    """Wait for the child to exit (it closed the channel), terminating it after *grace*."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        pid, raw = os.waitpid(child, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(raw)
        time.sleep(0.02)
    try:
        os.kill(child, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _pid, raw = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(raw)


def _run_parent(
    child: int,
    sock: socket.socket,
    paths: PathPolicy,
    kernel_factory: Callable[[], k.KernelBackend | None],
    on_exit: Callable[[int], None],
    auth: Any = None,
    debug: int = 0,
) -> None:
    """The monitor's event loop: requests from the child, kernel events, forwarded signals."""
    loop = asyncio.new_event_loop()
    done: asyncio.Future[None] = loop.create_future()

    def forward(signum: int) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in _FORWARDED:
        loop.add_signal_handler(sig, forward, sig)
    signal.signal(signal.SIGINT, _sigint(debug))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    kernel: k.KernelBackend | None = None
    status = 1
    try:
        kernel = kernel_factory()
        if kernel is not None:
            kernel.open()
        monitor = Monitor(sock, paths, kernel, auth)
        if kernel is not None:
            kernel.set_event_handler(monitor.send_event)
            kernel.attach(loop)

        def readable() -> None:
            if not monitor.serve_one() and not done.done():
                loop.remove_reader(sock.fileno())
                done.set_result(None)

        loop.add_reader(sock.fileno(), readable)
        log.debug("monitor: serving child %d", child)
        loop.run_until_complete(done)
    except Exception:
        log.exception("monitor: failed")
    finally:
        status = _reap(child)
        if kernel is not None:
            kernel.close()
        on_exit(status)
    logging.shutdown()
    os._exit(status if status >= 0 else 128 - status)

