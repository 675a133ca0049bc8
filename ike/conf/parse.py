"""The isakmpd.conf(5) line parser, following what OpenBSD's ``conf.c`` does.

Rules (reference/isakmpd.md 3.1):

- a line whose first character is ``#`` or ``;`` is a comment (no inline comments: a ``#`` later
  in a line is part of the value);
- ``[name]`` opens a section; the name is the text up to the first ``]``;
- ``Tag=Value``: the tag runs from column 0 to the first space, tab or ``=``; the value starts
  after ``=`` and leading blanks, trailing whitespace is stripped;
- a backslash right before the newline joins two lines, both characters becoming spaces;
- an unterminated last line is ignored ("last line unterminated");
- the first definition of a tag wins; later ones are reported and ignored.

Where ``conf.c`` only logs and skips a line it cannot use (no ``]``, a line with neither ``=`` nor
only blanks, an assignment before any section, an indented assignment with an empty tag), this
parser raises :class:`ConfError` naming ``file:line``, so that a broken file is refused as a whole
(on SIGHUP the daemon then keeps its previous configuration).  The harmless cases (duplicates, the
unterminated last line) are kept as warnings for the daemon to log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECRET_TAGS = frozenset({"authentication", "xauth-password"})
"""Tags (lower case) whose values (pre-shared keys, passwords) stay out of reports, logs and
error messages; so do all values of the sections named by ``XAUTH-Users`` (user = password)."""
_SECRET_TAG = re.compile("|".join(sorted(map(re.escape, SECRET_TAGS))), re.IGNORECASE)


def mentions_secret(text: str) -> bool:
    """Whether *text* holds a secret tag's name (in any case)."""
    return _SECRET_TAG.search(text) is not None


def redacted(text: str) -> str:
    """*text* (a configuration or FIFO line) as it may be logged: whatever follows a secret
    tag's name is hidden."""
    found = _SECRET_TAG.search(text)
    if found is None or found.end() == len(text):
        return text
    return text[: found.end()] + "<secret>"


class ConfError(Exception):
    """A configuration that cannot be used; ``str()`` is ``file:line: message``."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Binding:
    """One ``Tag=Value`` as written in the file, with where it was written."""

    section: str
    tag: str
    value: str
    line: int


def _logical_lines(text: str, source: str, warnings: list[str]) -> list[tuple[int, str]]:
    """Split into lines, joining backslash continuations; drop an unterminated last line."""
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    lines = text.split("\n")
    terminated = lines[-1] == ""
    if terminated:
        lines.pop()
    for index, raw in enumerate(lines, start=1):
        if not terminated and index == len(lines):
            warnings.append(f"{source}:{index}: last line unterminated, ignored")
            break
        if raw.endswith("\r"):
            raw = raw[:-1]
        if not pending:
            start = index
        if raw.endswith("\\"):
            pending += raw[:-1] + "  "
            continue
        out.append((start, pending + raw))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def parse_text(text: str, source: str = "<string>") -> tuple[list[Binding], list[str]]:
    """Parse the text of an isakmpd.conf; return its bindings in order and the warnings.

    Raises :class:`ConfError` on the first line the reference would have had to skip.
    """
    warnings: list[str] = []
    bindings: list[Binding] = []
    section: str | None = None
    for number, line in _logical_lines(text, source, warnings):
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            end = line.find("]")
            if end < 0:
                raise ConfError(
                    source, number, f"non-matched ']' in section header {redacted(line)!r}"
                )
            section = line[1:end]
            if not section:
                raise ConfError(source, number, "empty section name '[]'")
            continue
        eq = line.find("=")
        if eq < 0:
            if line.strip(" \t"):
                raise ConfError(
                    source, number, f"syntax error, not a Tag=Value line: {redacted(line)!r}"
                )
            continue
        if section is None:
            raise ConfError(source, number, f"tag outside any section: {redacted(line)!r}")
        tag_end = len(line)
        for stop in " \t=":
            pos = line.find(stop)
            if 0 <= pos < tag_end:
                tag_end = pos
        tag = line[:tag_end]
        if not tag:
            raise ConfError(
                source, number, "empty tag (tags start in column 0; indentation is not supported)"
            )
        value = line[eq + 1 :].lstrip(" \t").rstrip()
        bindings.append(Binding(section, tag, value, number))
    return bindings, warnings


LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def strtol(number: str) -> int:
    """A signed decimal as C ``strtol`` reads it: saturated to the range of a C ``long``, so
    that thousands of digits (which ``int()`` refuses) are one more out-of-range value."""
    negative = number.startswith("-")
    digits = number.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 19:
        return LONG_MIN if negative else LONG_MAX
    value = -int(digits) if negative else int(digits)
    return max(LONG_MIN, min(LONG_MAX, value))


def scan_int(text: str) -> tuple[int, str] | None:
    """Read one C ``%d`` from the start of *text* (after blanks); return it and the rest."""
    i = 0
    while i < len(text) and text[i] in " \t\n\r\f\v":
        i += 1
    j = i
    if j < len(text) and text[j] in "+-":
        j += 1
    k = j
    while k < len(text) and text[k].isdigit() and text[k].isascii():
        k += 1
    if k == j:
        return None
    return strtol(text[i:k]), text[k:]


def atoi(text: str) -> int:
    """C ``atoi``: the leading number of *text*, or 0; how isakmpd reads numeric tags."""
    got = scan_int(text)
    return got[0] if got is not None else 0


def scan_offer(text: str) -> tuple[int, ...]:
    """Emulate ``sscanf(value, "%d,%d:%d")``: the fields that were matched, in order."""
    fields: list[int] = []
    rest = text
    for sep in (",", ":", None):
        got = scan_int(rest)
        if got is None:
            break
        fields.append(got[0])
        rest = got[1]
        if sep is None:
            break
        if not rest.startswith(sep):
            break
        rest = rest[1:]
    return tuple(fields)
