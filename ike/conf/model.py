"""The running configuration: the user's bindings over the built-in defaults, and transactions.

Lookups are case-insensitive for sections and tags, values are kept as written.  The built-in
sections (:mod:`ike.conf.defaults`) answer per tag wherever the user did not define the tag; a
FIFO ``C rm``/``C rms`` removes a built-in binding as well, as ``conf_remove_now`` does.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ike.conf import defaults
from ike.conf.parse import ConfError, atoi, parse_text, scan_offer

_log = logging.getLogger("ike.conf")
_DERIVED = ("Default-phase-1-lifetime", "Default-phase-2-lifetime", "Default-phase-1-ID")


@dataclass
class _Section:
    name: str
    tags: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower tag -> (tag, value)


Opener = Callable[[str], BinaryIO]
"""Opens a file for reading (the privilege-separated child asks its parent to do this)."""


def check_secrecy(path: str, fd: int) -> None:
    """Refuse a file that group or others may access, or that a stranger owns (isakmpd.8).

    The rule is ``check_file_secrecy_fd``'s: the owner is root or the running user, and the mode
    has no group or other bits at all.
    """
    st = os.fstat(fd)
    if st.st_uid not in (0, os.getuid()):
        raise ConfError(path, None, f"owned by uid {st.st_uid}, neither root nor the running user")
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfError(
            path,
            None,
            f"mode {mode:04o} gives access to group or others; it must be 0600 or stricter",
        )


def read_secret_file(path: str, opener: Opener | None = None) -> str:
    """Read a config or policy file after :func:`check_secrecy`; errors are ConfError."""
    try:
        handle = opener(path) if opener is not None else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise ConfError(path, None, f"cannot open: {exc.strerror or exc}") from None
    with handle:
        check_secrecy(path, handle.fileno())
        try:
            data = handle.read()
        except OSError as exc:
            raise ConfError(path, None, f"cannot read: {exc.strerror or exc}") from None
    return data.decode("utf-8", errors="replace")


class Conf:
    """An isakmpd.conf database: parsed file bindings plus on-demand built-in sections."""

    def __init__(self, source: str = "<string>") -> None:
        self.source = source
        self.warnings: list[str] = []
        self._sections: dict[str, _Section] = {}
        self._masked_sections: set[str] = set()
        self._masked_tags: set[tuple[str, str]] = set()
        self._derived: dict[str, str] = {}

    # ---- construction ------------------------------------------------------------------------

    @classmethod
    def from_text(cls, text: str, source: str = "<string>") -> Conf:
        """Parse *text*; raises ConfError ``source:line: message`` on a line it cannot use."""
        conf = cls(source)
        bindings, conf.warnings = parse_text(text, source)
        for b in bindings:
            if not conf._set_now(b.section, b.tag, b.value, override=False, file_only=True):
                conf.warnings.append(
                    f"{source}:{b.line}: duplicate tag [{b.section}]:{b.tag}, ignoring"
                )
        for tag in _DERIVED:
            value = conf._user_value("General", tag)
            if value is not None:
                conf._derived[tag.lower()] = value
        return conf

    @classmethod
    def load(cls, path: str, opener: Opener | None = None) -> Conf:
        """Read and parse the file at *path*, refusing it if group or others may access it."""
        return cls.from_text(read_secret_file(path, opener), source=path)

    # ---- lookups -----------------------------------------------------------------------------

    def _user_value(self, section: str, tag: str) -> str | None:
        sect = self._sections.get(section.lower())
        if sect is None:
            return None
        got = sect.tags.get(tag.lower())
        return got[1] if got is not None else None

    def _defaults(self, section: str) -> list[tuple[str, str]]:
        key = section.lower()
        if key in self._masked_sections:
            return []
        tags = defaults.default_tags(section, lambda _s, t: self._derived.get(t.lower()))
        return [(t, v) for t, v in tags if (key, t.lower()) not in self._masked_tags]

    def get_str(self, section: str, tag: str, default: str | None = None) -> str | None:
        """The value of ``[section]:tag``, from the file or the built-in defaults."""
        value = self._user_value(section, tag)
        if value is not None:
            return value
        key = tag.lower()
        for t, v in self._defaults(section):
            if t.lower() == key:
                return v
        return default

    def get_num(self, section: str, tag: str, default: int) -> int:
        """The value read as C ``atoi`` does (``"3600,60:86400"`` gives 3600), or *default*."""
        value = self.get_str(section, tag)
        return atoi(value) if value is not None else default

    def get_list(self, section: str, tag: str) -> list[str]:
        """The comma-separated elements of the value, trimmed; empty elements are dropped."""
        value = self.get_str(section, tag)
        if value is None:
            return []
        items = [item.strip() for item in value.split(",")]
        if any(not item for item in items):
            _log.warning("conf_get_list: [%s]:%s: empty field, ignoring", section, tag)
        return [item for item in items if item]

    def get_tag_list(self, section: str) -> list[str]:
        """The tags of *section*: the user's in file order, then the built-in ones."""
        sect = self._sections.get(section.lower())
        tags = [t for t, _v in sect.tags.values()] if sect is not None else []
        seen = {t.lower() for t in tags}
        tags += [t for t, _v in self._defaults(section) if t.lower() not in seen]
        return tags

    def has_section(self, section: str) -> bool:
        """Whether *section* has any binding, from the file or built in."""
        return bool(self.get_tag_list(section))

    def sections(self) -> list[str]:
        """The user's sections, then the fixed built-in ones (named suites are not listed)."""
        names = [s.name for s in self._sections.values() if s.tags]
        seen = {n.lower() for n in names}
        for name in defaults.FIXED_SECTIONS:
            if name.lower() not in seen and self._defaults(name):
                names.append(name)
        return names

    def secret_sections(self) -> frozenset[str]:
        """The sections (lower case) named by an ``XAUTH-Users`` tag: every value in them is a
        password, kept out of logs and reports."""
        return frozenset(v.lower() for s in self.sections()
                         if (v := self.get_str(s, "XAUTH-Users")))

    def match_num(self, section: str, tag: str, x: int) -> bool:
        """Offer/accept check of ``X,Y:Z`` (``sscanf("%d,%d:%d")``): X == x, or Y <= x <= Z."""
        value = self.get_str(section, tag)
        if value is None:
            return False
        fields = scan_offer(value)
        if len(fields) == 1:
            return x == fields[0]
        if len(fields) == 3:
            return fields[1] <= x <= fields[2]
        _log.error("conf_match_num: [%s]:%s: invalid number spec %r", section, tag, value)
        return False

    def user_bindings(self) -> Iterator[tuple[str, list[tuple[str, str]]]]:
        """The non-default bindings by section, for the ``conf_report`` part of the report."""
        for sect in self._sections.values():
            if sect.tags:
                yield sect.name, list(sect.tags.values())

    # ---- changes -----------------------------------------------------------------------------

    def _set_now(
        self, section: str, tag: str, value: str, override: bool, file_only: bool = False
    ) -> bool:
        """Set a binding; without *override* an existing one (a built-in too) is kept.

        While the file itself is read, *file_only*: the defaults come after the file.
        """
        current = self._user_value(section, tag) if file_only else self.get_str(section, tag)
        if not override and current is not None:
            return False
        sect = self._sections.setdefault(section.lower(), _Section(section))
        sect.tags[tag.lower()] = (sect.tags.get(tag.lower(), (tag, ""))[0], value)
        return True

    def _remove_now(self, section: str, tag: str) -> None:
        key = section.lower()
        sect = self._sections.get(key)
        if sect is not None:
            sect.tags.pop(tag.lower(), None)
        self._masked_tags.add((key, tag.lower()))

    def _remove_section_now(self, section: str) -> None:
        self._sections.pop(section.lower(), None)
        self._masked_sections.add(section.lower())

    def transaction(self) -> Transaction:
        """Start a transaction: queued changes applied together by ``commit()``."""
        return Transaction(self)


@dataclass
class _Op:
    kind: str  # "set", "rm", "rms"
    section: str
    tag: str = ""
    value: str = ""
    override: bool = False


class Transaction:
    """Queued configuration changes (``conf_begin``/``conf_set``/``conf_end``).

    Use as a context manager to commit on success and drop the queue on an exception.
    """

    def __init__(self, conf: Conf) -> None:
        self.conf = conf
        self._ops: list[_Op] = []
        self.messages: list[str] = []

    def set(self, section: str, tag: str, value: str, override: bool = False) -> None:
        """Queue ``[section]:tag=value``; without *override* an existing tag is kept."""
        self._ops.append(_Op("set", section, tag, value, override))

    def add(self, section: str, tag: str, value: str) -> None:
        """Queue appending *value* to the list ``[section]:tag`` unless it is already there."""
        current = self._pending_value(section, tag)
        if current is None:
            self.set(section, tag, value, override=True)
            return
        if value in [item.strip() for item in current.split(",")]:
            return
        joined = current + value if current.endswith(",") else f"{current},{value}"
        self.set(section, tag, joined, override=True)

    def remove_value(self, section: str, tag: str, value: str) -> None:
        """Queue removing *value* from the list ``[section]:tag``; an emptied tag goes away."""
        current = self._pending_value(section, tag)
        if current is None:
            return
        items = [item.strip() for item in current.split(",") if item.strip()]
        kept = [item for item in items if item != value]
        if len(kept) == len(items):
            return
        if kept:
            self.set(section, tag, ",".join(kept), override=True)
        else:
            self.remove(section, tag)

    def remove(self, section: str, tag: str) -> None:
        """Queue removing ``[section]:tag`` (a built-in value too)."""
        self._ops.append(_Op("rm", section, tag))

    def remove_section(self, section: str) -> None:
        """Queue removing the whole of ``[section]`` (its built-in values too)."""
        self._ops.append(_Op("rms", section))

    def _pending_value(self, section: str, tag: str) -> str | None:
        value = self.conf.get_str(section, tag)
        for op in self._ops:
            if op.section.lower() != section.lower():
                continue
            if op.kind == "rms" or (op.kind == "rm" and op.tag.lower() == tag.lower()):
                value = None
            elif (
                op.kind == "set"
                and op.tag.lower() == tag.lower()
                and (op.override or value is None)
            ):
                value = op.value
        return value

    def touches(self, section: str, tags: tuple[str, ...] = ()) -> bool:
        """Whether a queued change affects *section* (and one of *tags*, if given)."""
        wanted = {t.lower() for t in tags}
        for op in self._ops:
            if op.section.lower() != section.lower():
                continue
            if not wanted or op.kind == "rms" or op.tag.lower() in wanted:
                return True
        return False

    def commit(self) -> list[str]:
        """Apply the queued changes in order; return what was ignored (duplicate tags)."""
        for op in self._ops:
            if op.kind == "set":
                if not self.conf._set_now(op.section, op.tag, op.value, op.override):
                    self.messages.append(f"duplicate tag [{op.section}]:{op.tag}, ignoring")
            elif op.kind == "rm":
                self.conf._remove_now(op.section, op.tag)
            else:
                self.conf._remove_section_now(op.section)
        self._ops.clear()
        return self.messages

    def abort(self) -> None:
        """Drop the queued changes."""
        self._ops.clear()

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
