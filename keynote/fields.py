"""Split KeyNote text into assertions and fields by hand (RFC 2704 section 4.1).

Lark never sees the whole assertion: the field structure is line-based (a field starts at the
beginning of a line with `Name:`, continues on lines that begin with whitespace or `#`, and a
blank line ends the assertion), which is simpler and faster to split here. Every field keeps its
byte offsets in the source text, so error messages can name line and column and the signed
region (RFC 2704 section 4.6.7) can be cut from the original text.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass

from keynote.errors import KeyNoteSyntaxError

#: Field names as RFC 2704 spells them, keyed by their lower-case form.
FIELD_NAMES: dict[str, str] = {
    "keynote-version": "KeyNote-Version",
    "local-constants": "Local-Constants",
    "authorizer": "Authorizer",
    "licensees": "Licensees",
    "conditions": "Conditions",
    "comment": "Comment",
    "signature": "Signature",
}

#: A field longer than this is refused before any parsing. Keys and certificates are a few KB;
#: 256 KiB holds a Licensees list of a hundred RSA-4096 keys and bounds parse time to ~1 s.
MAX_FIELD_CHARS = 1 << 18

_SPACE = " \t\n\r\f\v"
_CONTINUATION = " \t\r\f\v#"


class LineMap:
    """Offset to (line, column) conversion for one source text, 1-based like editors."""

    __slots__ = ("_starts",)

    def __init__(self, text: str) -> None:
        starts = [0]
        find = text.find
        i = find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = find("\n", i + 1)
        self._starts = starts

    def position(self, offset: int) -> tuple[int, int]:
        """Return the 1-based line and column of a character offset."""
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1

    def line_start(self, offset: int) -> int:
        """Return the offset of the start of the line holding `offset`."""
        return self._starts[bisect.bisect_right(self._starts, offset) - 1]


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an assertion, as offsets into the source text."""

    name: str  # canonical name, e.g. "Conditions"
    start: int  # offset of the field name
    value_start: int  # offset just after the colon
    end: int  # offset just past the value (before the newline that ends the field)
    line: int  # 1-based line of the field name


@dataclass(frozen=True, slots=True)
class RawAssertion:
    """One assertion cut out of a source text, with its fields in order of appearance."""

    source: str
    text: str  # the whole source text the offsets refer to
    start: int  # first non-whitespace character (the signed region starts here)
    end: int  # just past the assertion (including its last newline, if any)
    line: int
    fields: tuple[Field, ...]

    @property
    def raw(self) -> str:
        """The assertion text as written, from its first field (or comment) on."""
        return self.text[self.start : self.end]

    def field(self, name: str) -> Field | None:
        """Return the field with this canonical name, or None if absent."""
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def value(self, f: Field) -> str:
        """Return the raw (unparsed) value text of a field."""
        return self.text[f.value_start : f.end]

    def padded_value(self, f: Field) -> str:
        """The value with the field name blanked out, so a parser's line/column stay exact.

        The parser then reports line 1 for the field's first line and the real column.
        """
        return " " * (f.value_start - f.start) + self.text[f.value_start : f.end]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A blank-line separated piece of a text, before its fields are split."""

    start: int
    end: int


def chunks(text: str) -> Iterator[Chunk]:
    """Cut a text at blank lines (`\\n\\n`), dropping pieces that hold only whitespace."""
    pos = 0
    n = len(text)
    while pos < n:
        idx = text.find("\n\n", pos)
        end = n if idx < 0 else idx + 1
        if text[pos:end].strip(_SPACE):
            yield Chunk(pos, end)
        pos = end if idx >= 0 else n


def comment_only(text: str, chunk: Chunk) -> bool:
    """True if a chunk holds only `#` comment lines: a file's header, not an assertion.

    Policy files often start with a comment block followed by a blank line; the reference's
    kn_read_asserts hands that block to kn_add_assertion, which fails it, and isakmpd goes on.
    Here such a block is simply not an assertion.
    """
    for line in text[chunk.start : chunk.end].split("\n"):
        stripped = line.lstrip(_SPACE)
        if stripped and not stripped.startswith("#"):
            return False
    return True


def split_assertion(text: str, chunk: Chunk, source: str, lines: LineMap) -> RawAssertion:
    """Split one chunk into fields; raise KeyNoteSyntaxError on a structural error."""
    e = chunk.end
    p = chunk.start
    while p < e and text[p] in _SPACE:
        p += 1
    start = p

    def fail(message: str, offset: int, offending: str, field: str = "") -> KeyNoteSyntaxError:
        line, col = lines.position(offset)
        return KeyNoteSyntaxError(message, source=source, line=line, column=col, field=field,
                                  text=offending)

    if lines.line_start(start) != start:
        raise fail("an assertion must start at the beginning of a line", start,
                   text[start : text.find("\n", start, e) if "\n" in text[start:e] else e])
    fields: list[Field] = []
    seen: set[str] = set()
    seen_comment = False
    while p < e:
        line_end = text.find("\n", p, e)
        if line_end < 0:
            line_end = e
        if text[p] == "#":
            seen_comment = True
            p = line_end + 1
            while p < e and text[p] in _SPACE:
                p += 1
            if p < e and lines.line_start(p) != p:
                raise fail("a field must start at the beginning of a line", p,
                           text[p:line_end])
            continue
        colon = text.find(":", p, line_end)
        if colon < 0:
            raise fail("expected a field name followed by ':'", p, text[p:line_end])
        typed = text[p:colon]
        name = FIELD_NAMES.get(typed.lower())
        if name is None:
            raise fail("unknown field name (RFC 2704 names: " + ", ".join(FIELD_NAMES.values())
                       + ")", p, typed)
        if "Signature" in seen:
            raise fail("the Signature field must be the last field", p, typed, name)
        if name in seen:
            raise fail("duplicate field", p, typed, name)
        if name == "KeyNote-Version" and (fields or seen_comment):
            raise fail("KeyNote-Version must be the first field", p, typed, name)
        q = line_end
        while q < e - 1 and text[q + 1] in _CONTINUATION:
            nl = text.find("\n", q + 1, e)
            q = nl if nl >= 0 else e
        if q - colon - 1 > MAX_FIELD_CHARS:
            raise fail(f"field longer than {MAX_FIELD_CHARS} characters", p, typed, name)
        line, _ = lines.position(p)
        fields.append(Field(name, p, colon + 1, q, line))
        seen.add(name)
        p = q + 1
    if "Authorizer" not in seen:
        raise fail("missing Authorizer field", start, text[start : start + 20])
    line, _ = lines.position(start)
    return RawAssertion(source, text, start, e, line, tuple(fields))


def split_assertions(text: str, source: str = "<string>") -> list[RawAssertion]:
    """Split a text holding one or more assertions; raise on the first structural error."""
    lines = LineMap(text)
    return [split_assertion(text, c, source, lines) for c in chunks(text)
            if not comment_only(text, c)]
