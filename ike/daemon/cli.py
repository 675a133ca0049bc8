"""``isakmpd``: the daemon's entry point (the console script points at :func:`main`).

Start-up follows isakmpd.c: parse the options, read the configuration and the policy (refusing
files that group or others may read), daemonise unless ``-d``, create the FIFO, write the pid
file, then split into the privileged monitor and the unprivileged child that runs the protocol.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ike.conf import Conf, ConfError, read_secret_file
from ike.daemon import control, fifo, monitored, privsep
from ike.daemon.log import DebugLevels, log_print, parse_debug_spec, setup_logging
from ike.daemon.options import HELP, USAGE, Options, UsageError, parse_args
from ike.daemon.runtime import Daemon, DirectFiles, load_policy
from ike.kernel import interface as k
from ike.kernel.none import NoneKernel

log = logging.getLogger("ike.daemon")

DEFAULT_POLICY = "/etc/isakmpd/isakmpd.policy"


class StartupError(Exception):
    """The daemon cannot start; the message says why."""


def _apply_general(conf: Conf, options: Options, levels: DebugLevels) -> None:
    """``[General]`` tags that act like options: Loglevel, Logverbose, Acquire-Only."""
    for spec in conf.get_list("General", "Loglevel"):
        try:
            cls, level = parse_debug_spec(spec)
        except ValueError as exc:
            log.warning("[General]:Loglevel %s ignored: %s", spec, exc)
            continue
        levels.set(cls, level)
    if conf.get_str("General", "Logverbose") is not None:
        options.verbose = True
    if conf.get_str("General", "Acquire-Only") is not None:
        options.acquire_only = True


def load_initial_conf(options: Options) -> Conf:
    """The configuration at start-up; a missing file means the built-in defaults only."""
    try:
        conf = Conf.from_text(read_secret_file(options.config_file), source=options.config_file)
    except ConfError as exc:
        if not os.path.exists(options.config_file) and exc.line is None:
            log.warning("%s: no such file, using the built-in defaults", options.config_file)
            return Conf.from_text("", source=options.config_file)
        raise StartupError(str(exc)) from None
    for warning in conf.warnings:
        log.warning("%s", warning)
    return conf


def uses_keynote(conf: Conf, options: Options) -> bool:
    """Whether policy checks run (not ``-K``, and ``Use-Keynote`` starts with ``yes``)."""
    value = conf.get_str("General", "Use-Keynote") or "yes"
    return not options.ignore_policy and value.startswith("yes")


def path_policy(conf: Conf, options: Options) -> privsep.PathPolicy:
    """The directories the monitor lets the child read and write."""
    reads = ["/etc/isakmpd", os.path.dirname(os.path.abspath(options.config_file))]
    policy = conf.get_str("General", "Policy-file") or DEFAULT_POLICY
    reads.append(os.path.dirname(os.path.abspath(policy)))
    for section, tag in (
        ("X509-certificates", "CA-directory"),
        ("X509-certificates", "Cert-directory"),
        ("X509-certificates", "CRL-directory"),
        ("X509-certificates", "Private-key-directory"),
        ("KeyNote", "Credential-directory"),
        ("General", "Pubkey-directory"),
    ):
        value = conf.get_str(section, tag)
        if value:
            reads.append(os.path.abspath(value))
    for section in conf.sections():  # XAUTH servers' password files
        value = conf.get_str(section, "XAUTH-Password-File")
        if value:
            reads.append(os.path.dirname(os.path.abspath(value)))
    writes = [options.run_dir]
    for path in (options.report_path, options.result_path, options.pcap_file):
        if path:
            writes.append(os.path.dirname(os.path.abspath(path)))
    return privsep.PathPolicy(list(dict.fromkeys(reads)), list(dict.fromkeys(writes)))


def load_pki(conf: Conf) -> Any:
    """The PKI key source over ``[X509-Certificates]``; it stays in the privileged parent,
    which answers the child's key and certificate lookups."""
    try:
        from pki import PKIAuth
        from pki.store import Store, StoreConfig

        store = Store.load(StoreConfig.from_conf(conf))
    except Exception as exc:
        log.warning("pki: cannot load the PKI directories: %s", exc)
        return None
    for problem in store.problems:
        log.warning("pki: %s", problem)
    return PKIAuth(store, time.time)


def daemonize() -> None:
    """Detach from the terminal (``daemon(0, 0)``)."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def write_pid_file(path: str, pid: int) -> None:
    """Write ``pid`` to ``path`` so that a reader never sees it half written: a temporary file
    beside it, renamed over it.  (Opened with "w" and then written, the file first exists
    empty; a supervisor, or a test, that reads it once it exists got "" under load.)"""
    tmp = f"{path}.{pid}.tmp"
    try:
        with open(tmp, "w") as pid_file:
            pid_file.write(f"{pid}\n")
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _preload() -> None:
    """Load what the child needs before the chroot takes the file system away: every module
    of the packages (imports are lazy in places), time zone data, the KeyNote grammar."""
    import encodings.idna  # noqa: F401
    import importlib
    import pkgutil

    import ike
    import keynote
    import pki

    for package in (ike, keynote, pki):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:
                log.debug("preload %s: %s", info.name, exc)
    time.localtime()
    try:
        from keynote import Session

        Session().add_assertions(
            'Authorizer: "POLICY"\nLicensees: "x"\nConditions: app_domain == "IPsec policy";\n',
            trusted=True,
            source="<preload>",
        )
    except Exception as exc:
        log.debug("keynote preload: %s", exc)


def _cleanup(paths: list[str]) -> Callable[[int], None]:
    def remove(_status: int) -> None:
        for path in paths:
            try:
                os.unlink(path)
            except OSError:
                pass

    return remove


def _kernel_factory(options: Options) -> Callable[[], k.KernelBackend | None]:
    if options.no_kernel:
        return lambda: None

    def make() -> k.KernelBackend | None:
        from ike.kernel.xfrm import XfrmKernel

        return XfrmKernel(nat_mapping=options.nat_t)

    return make


def run(options: Options) -> int:
    """Start the daemon with parsed options; returns the exit status."""
    levels = DebugLevels()
    for cls, level in options.debug_levels.items():
        levels.set(cls, level)
    handler = setup_logging(options.debug > 0, levels, options.verbose)
    log_print(log, "isakmpd: starting")
    try:
        conf = load_initial_conf(options)
        _apply_general(conf, options, levels)
        handler.verbose = options.verbose
        policy_factory: Callable[[], Any] | None = None
        if uses_keynote(conf, options):
            policy_path = conf.get_str("General", "Policy-file") or DEFAULT_POLICY
            try:
                policy_factory = load_policy(policy_path, DirectFiles())
            except ConfError as exc:
                raise StartupError(f"policy: {exc}") from None
    except StartupError as exc:
        log.error("%s", exc)
        print(f"isakmpd: {exc}", file=sys.stderr)
        return 1
    auth = load_pki(conf)
    if not options.debug:
        daemonize()
    cleanup: list[str] = []
    fifo_fd: int | None = None
    try:
        if options.fifo_path != "-":
            fifo.create_fifo(options.fifo_path)
            cleanup.append(options.fifo_path)
            fifo_fd = os.open(options.fifo_path, os.O_RDWR | os.O_NONBLOCK)
        else:
            os.set_blocking(0, False)
            fifo_fd = 0
        write_pid_file(options.pid_path, os.getpid())
        cleanup.append(options.pid_path)
    except OSError as exc:
        log.error("cannot start: %s", exc)
        _cleanup(cleanup)(1)
        return 1
    try:
        split = privsep.start(
            path_policy(conf, options),
            _kernel_factory(options),
            _cleanup(cleanup),
            preload=_preload,
            auth=auth,
            debug=options.debug,
        )
    except (privsep.MonitorError, OSError) as exc:
        log.error("privilege separation failed: %s", exc)
        _cleanup(cleanup)(1)
        return 1
    return _child(options, conf, levels, handler, policy_factory, split, fifo_fd, auth)


def _child(
    options: Options,
    conf: Conf,
    levels: DebugLevels,
    handler: Any,
    policy_factory: Callable[[], Any] | None,
    split: privsep.Split,
    fifo_fd: int,
    auth: Any,
) -> int:
    monitor_kernel: monitored.MonitorKernel | None = None
    kernel: k.KernelBackend
    if options.no_kernel:
        kernel = SeededNoneKernel(options.seed) if options.seed is not None else NoneKernel()
    else:
        monitor_kernel = monitored.MonitorKernel(split.client)
        kernel = monitor_kernel
    child_auth = monitored.MonitorAuth(split.client) if auth is not None else None
    daemon = Daemon(options, conf, split.client, kernel, levels, handler, policy_factory,
                    auth=child_auth, chrooted=split.chrooted)  # fmt: skip
    if monitor_kernel is not None:
        engine = daemon.engine

        def on_kernel_event(event: object) -> None:
            if isinstance(event, k.Acquire):
                if not daemon.passive_mode:
                    engine.acquire(event, daemon.now)
            elif isinstance(event, k.Expire):
                engine.expire(event, daemon.now)
            elif isinstance(event, k.NatMapping):
                engine.nat_mapping(event, daemon.now)
            daemon.pump()

        monitor_kernel.set_event_handler(on_kernel_event)

    def on_monitor() -> None:
        alive = monitor_kernel.dispatch() if monitor_kernel is not None else _drain(split)
        if not alive:
            log.error("the privileged parent went away; shutting down")
            assert daemon.loop is not None
            daemon.loop.remove_reader(split.client.sock.fileno())
            daemon.shutdown()

    daemon.monitor_sock = split.client.sock
    daemon.on_monitor_event = on_monitor
    reader = fifo.FifoReader(fifo_fd, lambda cmd: control.handle(daemon, cmd),
                             owns_fd=fifo_fd != 0,
                             secret_sections=lambda: daemon.conf.secret_sections())  # fmt: skip

    async def main() -> None:
        loop = asyncio.get_running_loop()
        daemon.on_ready = lambda: reader.attach(loop)
        if monitor_kernel is not None:
            monitor_kernel.attach(loop)
        try:
            await daemon.run()
        finally:
            reader.close()

    try:
        asyncio.run(main())
    except OSError as exc:
        log.error("cannot run: %s", exc)
        return 1
    except Exception:
        log.exception("isakmpd: fatal error")
        return 1
    try:
        split.client.notify("shutdown")
    except (privsep.MonitorError, OSError):
        pass
    return daemon.exit_code


class SeededNoneKernel(NoneKernel):
    """``-n`` with ``-r seed``: SPIs from a seeded stream too, so that runs repeat exactly."""

    def __init__(self, seed: int) -> None:
        from ike.crypto.rand import RandomSource

        self.rand = RandomSource.seeded(seed ^ 0x5350495F)  # "SPI_": apart from the engine's

    def get_spi(self, cmd: k.GetSPI) -> int:
        """A seeded SPI within the requested range."""
        span = cmd.spi_max - cmd.spi_min + 1
        if span <= 0:
            return cmd.spi_min
        return cmd.spi_min + int.from_bytes(self.rand.bytes(4), "big") % span


def _drain(split: privsep.Split) -> bool:
    """Read what the parent sent unasked (the channel was readable); never block: a request
    of the same loop iteration may have read it already."""
    try:
        message, fds = privsep.recv_message(split.client.sock, wait=False)
    except BlockingIOError:
        return True
    except (ConnectionError, OSError):
        return False
    except ValueError:
        return True
    for fd in fds:
        os.close(fd)
    return message is not None


def main(argv: list[str] | None = None) -> int:
    """The ``isakmpd`` command."""
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        sys.stderr.write(f"isakmpd: {exc}\n{USAGE}")
        return 1
    if options.show_help:
        sys.stdout.write(HELP)
        return 0
    try:
        return run(options)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if exc.errno == errno.EPERM:
            sys.stderr.write(f"isakmpd: {exc}\n")
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
