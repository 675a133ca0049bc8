"""The FIFO user interface (isakmpd.8 "THE FIFO USER INTERFACE", reference/isakmpd.md 5).

:func:`parse_line` turns one line into a command dataclass with the reference's exact ``sscanf``
parsing, or raises :class:`FifoError` with the log message; :class:`FifoReader` reads lines
from the FIFO (or standard input) on the event loop.  There is no reply on the FIFO: errors go
to the log and the reader keeps going.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from ike.conf.parse import mentions_secret, redacted
from ike.daemon.scanf import sscanf

log = logging.getLogger("ike.daemon.fifo")

MAX_LINE = 4096
"""Longer lines are dropped whole (the reference reads into a fixed buffer)."""


class FifoError(Exception):
    """A line the FIFO interface cannot use; the message is what gets logged."""


@dataclass(frozen=True)
class Connect:
    """``c <name>``: start the named connection."""

    name: str


@dataclass(frozen=True)
class Teardown:
    """``t [main|quick] <name>``: tear down a connection or the SAs with a peer address."""

    name: str
    phase: int = 2


@dataclass(frozen=True)
class TeardownAll:
    """``T``: tear down every phase 2 SA."""


@dataclass(frozen=True)
class ConfigChange:
    """``C set|add|rmv|rm|rms [section]:tag=value [force]``."""

    op: str
    section: str
    tag: str = ""
    value: str = ""
    force: bool = False


@dataclass(frozen=True)
class ConfigGet:
    """``C get [section]:tag``: the value goes to the result file."""

    section: str
    tag: str


@dataclass(frozen=True)
class Delete:
    """``d <cookies> <msgid>``: delete one SA; ``message_id`` None is ``-`` (phase 1)."""

    cookies: bytes
    message_id: bytes | None


@dataclass(frozen=True)
class Debug:
    """``D <class> <level>`` / ``D A <level>`` (class None) / ``D T`` (toggle)."""

    cls: int | None = None
    level: int = 0
    toggle: bool = False


@dataclass(frozen=True)
class Mode:
    """``M active`` / ``M passive``."""

    passive: bool


@dataclass(frozen=True)
class PacketLog:
    """``p on[=path]`` / ``p off``; ``path`` None means the default capture file."""

    on: bool
    path: str | None = None


@dataclass(frozen=True)
class Shutdown:
    """``Q``: clean shutdown, as SIGTERM."""


@dataclass(frozen=True)
class Reinit:
    """``R``: reread configuration and policy, as SIGHUP."""


@dataclass(frozen=True)
class Report:
    """``r``: the internal-state report, to the log."""


@dataclass(frozen=True)
class ReportSAs:
    """``S``: every SA, to the result file."""


Command = (
    Connect
    | Teardown
    | TeardownAll
    | ConfigChange
    | ConfigGet
    | Delete
    | Debug
    | Mode
    | PacketLog
    | Shutdown
    | Reinit
    | Report
    | ReportSAs
)

_CONFIG_OPS = ("set", "add", "rmv", "rm", "rms", "get")


def _malformed(where: str, line: str) -> FifoError:
    return FifoError(f"{where}: command {redacted(line)!r} malformed")


def _parse_config(line: str) -> Command:
    got = sscanf(line, "C %4s")
    if len(got) != 1 or str(got[0]).lower() not in _CONFIG_OPS:
        raise _malformed("ui_config", line)
    op = str(got[0]).lower()
    if op in ("set", "add", "rmv"):
        got = sscanf(line, "C %*s [%200[^]]]:%200[^=]=%200s %200s")
        if len(got) < 3:
            raise _malformed("ui_config", line)
        return ConfigChange(op, str(got[0]), str(got[1]), str(got[2]), force=len(got) == 4)
    if op in ("rm", "get"):
        got = sscanf(line, "C %*s [%200[^]]]:%200s")
        if len(got) < 2:
            raise _malformed("ui_config", line)
        if op == "get":
            return ConfigGet(str(got[0]), str(got[1]))
        return ConfigChange("rm", str(got[0]), str(got[1]))
    got = sscanf(line, "C %*s [%200[^]]]")
    if len(got) < 1:
        raise _malformed("ui_config", line)
    return ConfigChange("rms", str(got[0]))


def _hex(text: str, size: int) -> bytes | None:
    if len(text) != size * 2:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _parse_delete(line: str) -> Command:
    got = sscanf(line, "d %32s %8s")
    if len(got) != 2:
        raise _malformed("ui_delete", line)
    cookies = _hex(str(got[0]), 16)
    if cookies is None:
        raise _malformed("ui_delete", line)
    if got[1] == "-":
        return Delete(cookies, None)
    msgid = _hex(str(got[1]), 4)
    if msgid is None:
        raise _malformed("ui_delete", line)
    return Delete(cookies, msgid)


def _parse_debug(line: str) -> Command:
    got = sscanf(line, "D %d %d")
    if len(got) == 2:
        cls, level = int(got[0]), int(got[1])
        if not 0 <= cls <= 10 or level < 0:
            raise _malformed("ui_debug", line)
        return Debug(cls, level)
    # ui_debug looks at the first character only, case-sensitively: "D A", "D T"
    got = sscanf(line, "D %2s %d")
    if len(got) == 2:
        if not str(got[0]).startswith("A") or int(got[1]) < 0:
            raise _malformed("ui_debug", line)
        return Debug(None, int(got[1]))
    got = sscanf(line, "D %2s")
    if len(got) == 1 and str(got[0]).startswith("T"):
        return Debug(toggle=True)
    raise _malformed("ui_debug", line)


def _parse_mode(line: str) -> Command:
    # ui_setmode: the word must begin with "active" or "passive" (strncmp over their length)
    got = sscanf(line, "M %10s")
    if len(got) == 1:
        word = str(got[0])
        if word.startswith("active"):
            return Mode(passive=False)
        if word.startswith("passive"):
            return Mode(passive=True)
    raise _malformed("ui_setmode", line)


def _parse_packetlog(line: str) -> Command:
    got = sscanf(line, "p %200s")
    if len(got) == 1:
        word = str(got[0])
        if word[:3].lower() == "on=" and len(word) > 3:
            return PacketLog(True, word[3:])
        if word.lower() == "on":
            return PacketLog(True)
        if word.lower() == "off":
            return PacketLog(False)
    raise _malformed("ui_packetlog", line)


def _parse_teardown(line: str) -> Command:
    for fmt, phase in (("t main %200s", 1), ("t quick %200s", 2), ("t %200s", 2)):
        got = sscanf(line, fmt)
        if len(got) == 1:
            return Teardown(str(got[0]), phase)
    raise _malformed("ui_teardown", line)


def parse_line(line: str) -> Command:
    """Parse one FIFO line (without its newline), dispatched on its first character."""
    if not line:
        raise FifoError("ui_handle_command: empty command")
    first = line[0]
    if first == "c":
        got = sscanf(line, "c %200s")
        if len(got) != 1:
            raise _malformed("ui_connect", line)
        return Connect(str(got[0]))
    if first == "t":
        return _parse_teardown(line)
    if first == "T":
        return TeardownAll()
    if first == "C":
        return _parse_config(line)
    if first == "d":
        return _parse_delete(line)
    if first == "D":
        return _parse_debug(line)
    if first == "M":
        return _parse_mode(line)
    if first == "p":
        return _parse_packetlog(line)
    if first == "Q":
        if line != "Q":
            raise _malformed("ui_shutdown_daemon", line)
        return Shutdown()
    if first == "R":
        return Reinit()
    if first == "r":
        return Report()
    if first == "S":
        return ReportSAs()
    raise FifoError(f"ui_handle_messages: unrecognized command: {first!r}")


def describe(command: Command, secret_sections: Collection[str] = ()) -> str:
    """The command for the log, with secrets (pre-shared keys, XAUTH passwords) hidden: the
    value of a secret tag or of any tag in a ``secret_sections`` section (lower case: those an
    ``XAUTH-Users`` tag names), and what follows a secret tag's name in a tag (``C rm`` and
    ``C get`` read the tag up to a blank, ``=`` and all)."""
    if isinstance(command, ConfigChange) and command.value \
            and command.section.lower() in secret_sections:
        return repr(replace(command, value="<secret>"))
    if isinstance(command, ConfigChange | ConfigGet) and mentions_secret(command.tag):
        hidden = replace(command, tag=redacted(command.tag))
        if isinstance(hidden, ConfigChange) and hidden.value:
            hidden = replace(hidden, value="<secret>")
        return repr(hidden)
    return repr(command)


def create_fifo(path: str) -> None:
    """Make the FIFO with mode 0600, replacing an old FIFO; refuse to replace anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISFIFO(st.st_mode):
            raise OSError(f"{path}: exists and is not a FIFO, refusing to replace it")
        os.unlink(path)
    os.mkfifo(path, 0o600)
    os.chmod(path, 0o600)


class FifoReader:
    """Reads command lines from a FIFO file descriptor and hands each to a callback.

    A malformed or over-long line is logged and ignored; the reader keeps reading.
    """

    def __init__(self, fd: int, handler: Callable[[Command], None], owns_fd: bool = True,
                 secret_sections: Callable[[], Collection[str]] = frozenset) -> None:
        self.fd = fd
        self.handler = handler
        self.owns_fd = owns_fd
        self.secret_sections = secret_sections
        """The sections whose values stay out of the log (the running configuration's)."""
        self._buf = b""
        self._dropping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.lines_seen = 0
        self.errors = 0

    @classmethod
    def open(cls, path: str, handler: Callable[[Command], None]) -> FifoReader:
        """Open *path* (``-`` for standard input) non-blocking, as the reference does."""
        if path == "-":
            os.set_blocking(0, False)
            return cls(0, handler, owns_fd=False)
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        return cls(fd, handler)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start reading on *loop*."""
        self._loop = loop
        loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        """Stop reading (and close the descriptor if ours)."""
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            self._loop = None
        if self.owns_fd:
            os.close(self.fd)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.error("fifo read failed: %s", exc)
            return
        if not data:
            if not self.owns_fd and self._loop is not None:  # stdin closed
                self._loop.remove_reader(self.fd)
                self._loop = None
            return
        self.feed(data)

    def feed(self, data: bytes) -> None:
        """Process bytes as read from the FIFO: whole lines are handled, the rest kept.

        A line longer than MAX_LINE is dropped whole however it arrives: at once with its
        newline or in pieces (then it is dropped as soon as it outgrows the limit)."""
        buf = self._buf + data
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            raw, start = buf[start:nl], nl + 1
            if self._dropping:
                self._dropping = False
            elif len(raw) > MAX_LINE:
                self._too_long()
            else:
                self.handle_line(raw.decode("utf-8", errors="replace").rstrip("\r"))
        self._buf = buf[start:]
        if len(self._buf) > MAX_LINE:
            if not self._dropping:
                self._too_long()
            self._buf = b""
            self._dropping = True

    def _too_long(self) -> None:
        log.warning("ui_handle_messages: line too long, ignored")
        self.errors += 1

    def handle_line(self, line: str) -> None:
        """Parse and dispatch one line; log and skip it if it is malformed."""
        self.lines_seen += 1
        if not line.strip():
            return
        try:
            command = parse_line(line)
        except FifoError as exc:
            self.errors += 1
            log.warning("%s", exc)
            return
        shown = describe(command, self.secret_sections())
        log.debug("ui_handle_command: %s", shown, extra={"dlevel": 10})
        try:
            self.handler(command)
        except Exception:
            log.exception("ui: command %s failed", shown)
