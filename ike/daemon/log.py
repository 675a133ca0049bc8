"""Logging as isakmpd does it: eleven debug classes with levels, syslog or stderr, report lines.

The library code logs with Python's :mod:`logging` under ``ike.*`` / ``keynote.*`` names; this
module maps each logger to a debug class (``ike.sa`` is class 6 "SA", ``ike.policy`` class 9
"Policy", ...).  A DEBUG record is shown when its level (``extra={"dlevel": n}``, 50 when not
given) is at most the class's level, set by ``-D class=level`` or the FIFO ``D`` command.  INFO
records (phase 1 / phase 2 done, ...) are shown with ``-v``; warnings and errors always.

Lines on stderr read ``HHMMSS.uuuuuu <Class> <level> <message>`` (``Default`` for plain
messages, ``Report>`` for report lines), as in reference/isakmpd.md 6.10.
"""

from __future__ import annotations

import logging
import sys
import syslog
import time
from typing import TextIO

DEBUG_CLASSES: tuple[tuple[str, str], ...] = (
    ("Misc", "Misc"),
    ("Transport", "Trpt"),
    ("Message", "Mesg"),
    ("Crypto", "Cryp"),
    ("Timer", "Timr"),
    ("Sysdep", "Sdep"),
    ("SA", "SA  "),
    ("Exchange", "Exch"),
    ("Negotiation", "Negt"),
    ("Policy", "Plcy"),
    ("FIFO user interface", "UI  "),
)
LOG_MISC, LOG_TRANSPORT, LOG_MESSAGE, LOG_CRYPTO, LOG_TIMER, LOG_SYSDEP = range(6)
LOG_SA, LOG_EXCHANGE, LOG_NEGOTIATION, LOG_POLICY, LOG_UI = range(6, 11)
DEFAULT_DLEVEL = 50
NOTICE = 25
"""isakmpd's ``log_print``: plain messages shown whatever -v says (INFO is ``log_verbose``)."""
logging.addLevelName(NOTICE, "NOTICE")
MAX_LEVEL = 99

# logger-name prefix -> debug class; the longest matching prefix wins
_CLASS_OF: dict[str, int] = {
    "ike.conf": LOG_MISC,
    "ike.daemon": LOG_MISC,
    "ike.daemon.transport": LOG_TRANSPORT,
    "ike.daemon.runtime": LOG_TRANSPORT,
    "ike.daemon.timer": LOG_TIMER,
    "ike.daemon.fifo": LOG_UI,
    "ike.daemon.privsep": LOG_SYSDEP,
    "ike.wire": LOG_MESSAGE,
    "ike.doi": LOG_MESSAGE,
    "ike.crypto": LOG_CRYPTO,
    "ike.kernel": LOG_SYSDEP,
    "ike.sa": LOG_SA,
    "ike.exchange": LOG_EXCHANGE,
    "ike.engine": LOG_NEGOTIATION,
    "ike.auth": LOG_NEGOTIATION,
    "ike.policy": LOG_POLICY,
    "keynote": LOG_POLICY,
    "pki": LOG_POLICY,
}


def debug_class_of(logger_name: str) -> int:
    """The debug class of a logger, by the longest known prefix of its name (Misc if none)."""
    best, found = -1, LOG_MISC
    for prefix, cls in _CLASS_OF.items():
        if (logger_name == prefix or logger_name.startswith(prefix + ".")) and len(prefix) > best:
            best, found = len(prefix), cls
    return found


def parse_debug_spec(text: str) -> tuple[int | None, int]:
    """Parse ``class=level`` of ``-D`` (class 0-10 or ``A``); None means all classes."""
    cls_text, sep, level_text = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not class=level")
    try:
        level = int(level_text, 10)
    except ValueError:
        raise ValueError(f"level {level_text!r} is not a number") from None
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"level {level} is out of range 0-{MAX_LEVEL}")
    if cls_text.strip().upper() == "A":
        return None, level
    try:
        cls = int(cls_text, 10)
    except ValueError:
        raise ValueError(f"class {cls_text!r} is neither a number nor A") from None
    if not 0 <= cls < len(DEBUG_CLASSES):
        raise ValueError(f"class {cls} is out of range 0-{len(DEBUG_CLASSES) - 1}")
    return cls, level


def timestamp(now: float | None = None) -> str:
    """``HHMMSS.uuuuuu`` in local time, the prefix of every log line."""
    now = time.time() if now is None else now
    return time.strftime("%H%M%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"


class DebugLevels:
    """The per-class debug levels, with the ``D T`` toggle."""

    def __init__(self) -> None:
        self.levels = [0] * len(DEBUG_CLASSES)
        self._saved: list[int] | None = None

    def set(self, cls: int | None, level: int) -> None:
        """Set one class (or all, with None) to *level*."""
        if cls is None:
            self.levels = [level] * len(DEBUG_CLASSES)
        else:
            self.levels[cls] = level
        self._saved = None

    def toggle(self) -> None:
        """``D T``: all classes to 0, and back to the earlier levels on the next toggle."""
        if self._saved is None:
            self._saved, self.levels = self.levels, [0] * len(DEBUG_CLASSES)
        else:
            self.levels, self._saved = self._saved, None


class IsakmpdHandler(logging.Handler):
    """Formats and filters records as isakmpd does, writing to stderr or syslog."""

    def __init__(self, levels: DebugLevels, stream: TextIO | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.debug_levels = levels
        self.stream = stream
        self.verbose = False
        self.use_syslog = stream is None

    def wants(self, record: logging.LogRecord) -> bool:
        """Whether the record passes the verbosity and class level rules."""
        if record.levelno >= NOTICE:
            return True
        if record.levelno >= logging.INFO:
            return self.verbose or getattr(record, "report", False)
        cls = getattr(record, "dclass", None)
        if cls is None:
            cls = debug_class_of(record.name)
        level = getattr(record, "dlevel", DEFAULT_DLEVEL)
        return bool(level <= self.debug_levels.levels[cls])

    def render(self, record: logging.LogRecord) -> str:
        """The line as written (without the time stamp when it goes to syslog)."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError) as exc:
            message = f"{record.msg!r} (bad log arguments: {exc})"
        if getattr(record, "report", False):
            tag = "Report>"
        elif record.levelno < logging.INFO:
            cls = getattr(record, "dclass", None)
            cls = debug_class_of(record.name) if cls is None else cls
            tag = f"{DEBUG_CLASSES[cls][1]} {getattr(record, 'dlevel', DEFAULT_DLEVEL)}"
        else:
            tag = "Default"
        return f"{tag} {message}"

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record if it passes :meth:`wants`."""
        if not self.wants(record):
            return
        line = self.render(record)
        try:
            if self.use_syslog or self.stream is None:
                prio = syslog.LOG_DEBUG
                if getattr(record, "report", False):
                    prio = syslog.LOG_ALERT
                elif record.levelno >= logging.ERROR:
                    prio = syslog.LOG_ERR
                elif record.levelno >= logging.WARNING:
                    prio = syslog.LOG_WARNING
                elif record.levelno >= logging.INFO:
                    prio = syslog.LOG_NOTICE
                syslog.syslog(prio, line)
            else:
                self.stream.write(f"{timestamp(record.created)} {line}\n")
                self.stream.flush()
        except (OSError, ValueError):
            self.handleError(record)


def setup_logging(
    foreground: bool, levels: DebugLevels, verbose: bool, stream: TextIO | None = None
) -> IsakmpdHandler:
    """Route all ``ike``/``keynote``/``pki`` logging to one isakmpd-style handler."""
    if not foreground:
        syslog.openlog("isakmpd", syslog.LOG_PID | syslog.LOG_NDELAY, syslog.LOG_DAEMON)
    handler = IsakmpdHandler(levels, (stream or sys.stderr) if foreground else None)
    handler.verbose = verbose
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, IsakmpdHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    return handler


def log_debug(logger: logging.Logger, cls: int, level: int, msg: str, *args: object) -> None:
    """``LOG_DBG((class, level, ...))``: a debug line for an explicit class and level."""
    logger.debug(msg, *args, extra={"dclass": cls, "dlevel": level})


def log_print(logger: logging.Logger, msg: str, *args: object) -> None:
    """``log_print``: a plain message, always shown (start, signals received, shutdown)."""
    logger.log(NOTICE, msg, *args)


def log_report(logger: logging.Logger, msg: str, *args: object) -> None:
    """A report line (``Report>``), shown whatever the debug levels."""
    logger.info(msg, *args, extra={"report": True})
