"""What the FIFO commands and signals do to a running :class:`~ike.daemon.runtime.Daemon`:
connections up and down, configuration transactions, debug levels, capture, reload, reports.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from ike.conf import Conf, ConfError, read_secret_file
from ike.daemon import fifo
from ike.daemon.log import log_print, log_report, timestamp
from ike.daemon.pcap import PcapWriter
from ike.daemon.report import (
    SA_FLAG_ACTIVE_ONLY,
    SA_FLAG_DPD,
    SA_FLAG_FADING,
    SA_FLAG_IKECFG,
    SA_FLAG_NAT_T_ENABLE,
    SA_FLAG_NAT_T_KEEPALIVE,
    SA_FLAG_READY,
    SA_FLAG_REPLACED,
    SA_FLAG_STAYALIVE,
    ProtoView,
    SAView,
    conf_report_lines,
    format_sa_file,
    sa_report_lines,
)
from ike.exchange.base import Exchange
from ike.exchange.phase1 import Phase1
from ike.exchange.transaction import CfgState
from ike.sa import IPsecSA, IsakmpSA, SAState

if TYPE_CHECKING:
    from ike.daemon.runtime import Daemon

log = logging.getLogger("ike.daemon.fifo")
rlog = logging.getLogger("ike.daemon.report")

_CONNECTION_TAGS = ("Connections", "Passive-connections")
# (encryption transform id, KEY_LENGTH attribute) -> key bytes, for the S file
_ESP_KEY_BYTES = {3: 24, 6: 16, 7: 16, 12: 16, 13: 20, 20: 20, 23: 20, 11: 0}
_AUTH_KEY_BYTES = {1: 16, 2: 20, 5: 32, 6: 48, 7: 64, 8: 20}
_KEY_LENGTH_ATTR = 6
_AUTH_ALG_ATTR = 5


# ---- SA views --------------------------------------------------------------------------------


def _remaining(at: float | None, now: float) -> int | None:
    return None if at is None else int(at - now)


def isakmp_view(sa: IsakmpSA, now: float, cfg: CfgState | None = None) -> SAView:
    """The report view of a phase 1 SA (``cfg``: its XAUTH and mode-config results)."""
    flags = SA_FLAG_READY if sa.state in (SAState.READY, SAState.FADING) else 0
    if sa.state is SAState.FADING:
        flags |= SA_FLAG_FADING
    if sa.stayalive:  # renegotiated at soft expiry (ike.exchange.rekey)
        flags |= SA_FLAG_STAYALIVE
    if sa.replaced:
        flags |= SA_FLAG_REPLACED
    if sa.dpd is not None:
        flags |= SA_FLAG_DPD
    if sa.nat is not None and sa.nat.detected:
        flags |= SA_FLAG_NAT_T_ENABLE | (SA_FLAG_NAT_T_KEEPALIVE if sa.nat.local_behind else 0)
    transaction = []
    if cfg is not None:
        if cfg.xauth:
            transaction.append(f"XAUTH: {cfg.xauth}" + (f" (user {cfg.xauth_user})"
                                                        if cfg.xauth_user else ""))
        if cfg.mode_cfg:
            flags |= SA_FLAG_IKECFG
            transaction += [f"Mode-config: {name} {', '.join(values)}"
                            for name, values in cfg.mode_cfg.items()]
    return SAView(
        sa.name, 1, sa.initiator, sa.local[0], sa.peer[0], sa.cookies, flags=flags,
        seconds=sa.life_seconds, kilobytes=sa.life_kbytes,
        soft_in=_remaining(sa.soft_at, now), hard_in=_remaining(sa.hard_at, now), ident=id(sa),
        transaction=transaction,
    )  # fmt: skip


def ipsec_view(sa: IPsecSA, now: float, daemon: Daemon) -> SAView:
    """The report view of a phase 2 SA bundle."""
    flags = SA_FLAG_READY if sa.state in (SAState.READY, SAState.FADING) else 0
    if sa.state is SAState.FADING:
        flags |= SA_FLAG_FADING
    if sa.name in daemon.active:
        flags |= SA_FLAG_STAYALIVE
    if "active-only" in [f.lower() for f in daemon.conf.get_list(sa.name, "Flags")]:
        flags |= SA_FLAG_ACTIVE_ONLY
    protos = []
    for number, p in enumerate(sa.protocols, start=1):
        attrs = dict(p.choice.attributes)
        auth = attrs.get(_AUTH_ALG_ATTR)
        enc_len = attrs.get(_KEY_LENGTH_ATTR)
        enc_bytes = enc_len // 8 if enc_len else _ESP_KEY_BYTES.get(p.choice.transform_id, 0)
        protos.append(
            ProtoView(
                p.choice.protocol_id,
                p.choice.transform_id,
                p.spi_out.to_bytes(4, "big") if p.spi_out else b"",
                p.spi_in.to_bytes(4, "big") if p.spi_in else b"",
                enc_key_length=len(p.enc_out) or enc_bytes,
                auth_key_length=len(p.auth_out) or _AUTH_KEY_BYTES.get(auth or 0, 0),
                auth_alg=auth,
                number=number,
            )
        )
    return SAView(
        sa.name, 2, sa.initiator, sa.local, sa.peer, sa.cookies,
        message_id=sa.message_id.to_bytes(4, "big"), flags=flags,
        seconds=sa.life_seconds, kilobytes=sa.life_kbytes,
        soft_in=_remaining(sa.soft_at, now), hard_in=_remaining(sa.hard_at, now),
        protos=protos, ident=id(sa),
    )  # fmt: skip


def sa_views(daemon: Daemon) -> list[SAView]:
    """Every SA the engine knows, phase 1 first."""
    now = daemon.now
    views = [isakmp_view(sa, now, daemon.engine.cfg_states.get(sa.cookies))
             for sa in daemon.engine.sas.isakmp.values()]
    views += [ipsec_view(sa, now, daemon) for sa in daemon.engine.sas.ipsec]
    return views


# ---- reports ---------------------------------------------------------------------------------


def report_lines(daemon: Daemon) -> list[str]:
    """The ``ui_report`` sections in isakmpd's order."""
    now = daemon.now
    lines = sa_report_lines(sa_views(daemon))
    for ex in daemon.engine.exchanges.values():
        # isakmpd's format: "%p <name> <policy> policy <initiator|responder> phase ..."
        lines.append(
            f"exchange_report: 0x{id(ex):x} {ex.name or '<unnamed>'} "
            f"{exchange_policy(daemon, ex) or '<no policy>'} policy "
            f"{'initiator' if ex.initiator else 'responder'} phase "
            f"{1 if ex.message_id == 0 else 2} doi 1 exchange {int(ex.exchange_type)} "
            f"step {ex.step}"
        )
        c = ex.sa.cookies
        lines.append(f"exchange_report: icookie {c[:8].hex()} rcookie {c[8:].hex()}")
        # isakmpd lists a phase 2 exchange's SAs ("sa_list %p ..."): here the bundle once keyed
        bundle = getattr(ex, "bundle", None) if ex.message_id else None
        sa_list = "" if not ex.message_id else (
            "sa_list " + (f"0x{id(bundle):x} " if bundle is not None else ""))
        lines.append(f"exchange_report: msgid {ex.message_id:08x} {sa_list}")
    for t in daemon.transports:
        lines.append(f"transport_report: transport 0x{id(t):x} flags 0 refcnt 1")
        lines.append(f"udp_report: fd {t.fd} src {t.local[0]}:{t.local[1]} dst *:0")
    for name in daemon.active:
        due = int((daemon._check_at or now) - now)
        lines.append(f"connection_report: connection {name} next check {max(due, 0)} seconds")
    for name in daemon.conf.get_list("Phase 2", "Passive-connections"):
        lines.append(
            f"connection_report: passive connection {name} "
            f"local_id: {daemon.conf.get_str(name, 'Local-ID') or '<none>'}, "
            f"remote_id: {daemon.conf.get_str(name, 'Remote-ID') or '<none>'}"
        )
    timer_at = daemon.engine.get_timer()
    if timer_at is not None:
        lines.append(
            f"timer_report: event engine_timer(0x{id(daemon.engine):x}) scheduled in "
            f"{int(timer_at - now)} seconds"
        )
    if daemon._check_at is not None:
        lines.append(
            f"timer_report: event connection_checker(0x{id(daemon):x}) scheduled in "
            f"{max(int(daemon._check_at - now), 0)} seconds"
        )
    return lines + conf_report_lines(daemon.conf)


def exchange_policy(daemon: Daemon, ex: Exchange) -> str | None:
    """What isakmpd keeps as ``exchange->policy``: the Phase 1 configuration section (the peer's
    ``Configuration``, else ``Default-phase-1-configuration``), or for a Quick Mode we started
    the connection's ``Configuration``; a Quick Mode a peer started has none."""
    if isinstance(ex, Phase1):
        return ex.configuration or None
    if ex.initiator and ex.name:
        return daemon.conf.get_str(ex.name, "Configuration")
    return None


def report_to_log(daemon: Daemon) -> None:
    """``r``: the report to the current log channel."""
    for line in report_lines(daemon):
        log_report(rlog, "%s", line)


def report_to_file(daemon: Daemon) -> None:
    """SIGUSR1: the report to the report file, each line ``HHMMSS.uuuuuu Report> text``."""
    stamp = timestamp(daemon.now)
    text = "".join(f"{stamp} Report> {line}\n" for line in report_lines(daemon))
    _write(daemon, daemon.options.report_path, text)


def _write(daemon: Daemon, path: str, text: str) -> None:
    """Write a result or report file whole: into ``path.tmp``, then renamed over *path*.  (Opened
    with truncation and then written, the file was empty for a moment, and whoever waits for it
    after a FIFO command -- a script, the tests -- could read nothing.)"""
    try:
        with daemon.files.open(path + ".tmp", write=True) as f:
            f.write(text.encode())
        daemon.files.publish(path)
    except Exception as exc:
        log.error("cannot write %s: %s", path, exc)


def write_sas(daemon: Daemon) -> None:
    """``S``: every SA to the result file."""
    _write(daemon, daemon.options.result_path, format_sa_file(sa_views(daemon)))


# ---- reload and capture ------------------------------------------------------------------------


def load_conf(daemon: Daemon) -> Conf:
    """Read the configuration file through the daemon's file access (secrecy checked)."""
    path = daemon.options.config_file
    conf = Conf.from_text(read_secret_file(path, lambda p: daemon.files.open(p)), source=path)
    for warning in conf.warnings:
        log.warning("%s", warning)
    return conf


def reinit(daemon: Daemon) -> None:
    """SIGHUP / ``R``: reread configuration and policy; keep the old ones if either is broken."""
    from ike.daemon.runtime import load_policy

    log_print(log, "reinitializing: rereading %s", daemon.options.config_file)
    try:
        conf = load_conf(daemon)
        factory = daemon.policy_factory
        if daemon.engine.use_keynote and not daemon.options.ignore_policy:
            path = conf.get_str("General", "Policy-file") or "/etc/isakmpd/isakmpd.policy"
            factory = load_policy(path, daemon.files)
    except ConfError as exc:
        log.error("reinit refused: %s; keeping the previous configuration and policy", exc)
        return
    daemon.conf = conf
    daemon.policy_factory = factory
    engine = daemon.engine
    engine.reload(conf)
    engine.policy_factory = factory
    engine.retransmits = conf.get_num("General", "Retransmits", 3)
    engine.exchange_max_time = float(conf.get_num("General", "Exchange-max-time", 120))
    reload_pki(daemon)
    log_print(log, "reinit: configuration and policy reloaded")
    daemon.reset_connections()
    if conf.get_str("General", "Renegotiate-on-HUP") is not None:
        renegotiate(daemon)


def renegotiate(daemon: Daemon) -> None:
    """``Renegotiate-on-HUP``: soft-expire every established phase 2 SA with no exchange
    running for its connection, so that it is negotiated again (``sa_reinit``)."""
    now = daemon.now
    for ipsa in daemon.engine.sas.ipsec:
        if ipsa.soft_at is not None and not daemon._in_progress(ipsa.name):
            log.debug("sa_reinit: renegotiating %s", ipsa.name, extra={"dlevel": 30})
            ipsa.soft_at = now
    daemon.pump()


def reload_pki(daemon: Daemon) -> None:
    """Reread the CA, certificate and CRL directories (the monitor does it for the child)."""
    reload = getattr(daemon.auth, "reload", None)
    if not callable(reload):
        reload = getattr(getattr(daemon.auth, "store", None), "reload", None)
    if callable(reload):
        for problem in reload():
            log.warning("pki: %s", problem)


def packet_log(daemon: Daemon, on: bool, path: str | None = None) -> None:
    """Start (truncating the file) or stop the cleartext capture."""
    if daemon.pcap is not None:
        daemon.pcap.close()
        daemon.pcap = None
    daemon.engine.capture_cleartext = on
    if not on:
        log_print(log, "packet capture stopped")
        return
    target = path or daemon.options.default_pcap_path
    try:
        daemon.pcap = PcapWriter(daemon.files.open(target, write=True), target)
    except Exception as exc:
        log.error("cannot capture to %s: %s", target, exc)
        daemon.engine.capture_cleartext = False
        return
    log_print(log, "packet capture to %s", target)


# ---- FIFO commands ---------------------------------------------------------------------------


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _teardown(daemon: Daemon, name: str, phase: int) -> None:
    engine = daemon.engine
    now = daemon.now
    if _is_address(name):
        if phase == 1:
            for sa in list(engine.sas.isakmp.values()):
                if sa.peer[0] == name:
                    engine.delete(sa.cookies.hex(), now)
        else:
            for ipsa in list(engine.sas.ipsec):
                if ipsa.peer == name:
                    if ipsa.name in daemon.active:
                        daemon.active.remove(ipsa.name)
                    engine.delete(ipsa.name, now)
    elif phase == 2:
        if name in daemon.active:
            daemon.active.remove(name)
        for ipsa in engine.sas.ipsec_by_name(name):
            engine.delete(ipsa.name, now)
    else:
        for sa in list(engine.sas.isakmp.values()):
            if sa.name == name:
                engine.delete(sa.cookies.hex(), now)
    daemon.pump()


def _config(daemon: Daemon, cmd: fifo.ConfigChange) -> None:
    tx = daemon.conf.transaction()
    if cmd.op == "set":
        tx.set(cmd.section, cmd.tag, cmd.value, override=cmd.force)
    elif cmd.op == "add":
        tx.add(cmd.section, cmd.tag, cmd.value)
    elif cmd.op == "rmv":
        tx.remove_value(cmd.section, cmd.tag, cmd.value)
    elif cmd.op == "rm":
        tx.remove(cmd.section, cmd.tag)
    else:
        tx.remove_section(cmd.section)
    touches = tx.touches("Phase 2", _CONNECTION_TAGS)
    for message in tx.commit():
        log.warning("ui_config: %s", message)
    daemon.engine.reload()  # the engine caches what it read
    if touches and cmd.op in ("set", "add", "rmv"):
        daemon.schedule_connection_reinit(5.0)


def _delete(daemon: Daemon, cmd: fifo.Delete) -> None:
    """``d``: exactly the SA with these cookies and message ID (``sa_lookup``), DELETE sent."""
    mid = None if cmd.message_id is None else int.from_bytes(cmd.message_id, "big")
    if not daemon.engine.delete_sa(cmd.cookies, mid, daemon.now):
        line = f"d {cmd.cookies.hex()} {'-' if mid is None else f'{mid:08x}'}"
        log_print(log, 'ui_delete: command "%s" found no SA', line)
        return
    daemon.pump()


def handle(daemon: Daemon, cmd: fifo.Command) -> None:
    """Carry out one FIFO command."""
    if isinstance(cmd, fifo.Connect):
        if cmd.name not in daemon.active:
            daemon.active.append(cmd.name)
        daemon.schedule_check(0.0)
    elif isinstance(cmd, fifo.Teardown):
        _teardown(daemon, cmd.name, cmd.phase)
    elif isinstance(cmd, fifo.TeardownAll):
        for ipsa in list(daemon.engine.sas.ipsec):
            if ipsa.name in daemon.active:
                daemon.active.remove(ipsa.name)
            daemon.engine.delete(ipsa.name, daemon.now)
        daemon.pump()
    elif isinstance(cmd, fifo.ConfigChange):
        _config(daemon, cmd)
    elif isinstance(cmd, fifo.ConfigGet):
        value = daemon.conf.get_str(cmd.section, cmd.tag)
        _write(daemon, daemon.options.result_path, "" if value is None else value + "\n")
    elif isinstance(cmd, fifo.Delete):
        _delete(daemon, cmd)
    elif isinstance(cmd, fifo.Debug):
        if cmd.toggle:
            daemon.levels.toggle()
        else:
            daemon.levels.set(cmd.cls, cmd.level)
        log_print(log, "debug levels now %s", daemon.levels.levels)
    elif isinstance(cmd, fifo.Mode):
        daemon.passive_mode = daemon.engine.passive = cmd.passive
        log_print(log, "daemon mode: %s", "passive" if cmd.passive else "active")
    elif isinstance(cmd, fifo.PacketLog):
        packet_log(daemon, cmd.on, cmd.path)
    elif isinstance(cmd, fifo.Shutdown):
        daemon.shutdown()
    elif isinstance(cmd, fifo.Reinit):
        reinit(daemon)
    elif isinstance(cmd, fifo.Report):
        # isakmpd's ui.c sends it to the log; the man page says "to a file, same as SIGUSR1":
        # both, so neither reader of isakmpd's behaviour is surprised
        report_to_file(daemon)
        report_to_log(daemon)
    elif isinstance(cmd, fifo.ReportSAs):
        write_sas(daemon)
