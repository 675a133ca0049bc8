"""KeyNote string literals, environment files (`keynote verify -e`) and key files (`-k`).

String literals follow RFC 2704 section 4.3.1 as libkeynote decodes them
(reference/keynote.md 1.3): `\\n \\r \\t \\f`, backslash-newline drops the
newline and all white space after it, `\\0o`/`\\0oo` and `\\ooo` octal escapes
(a value of 0 is not an escape, since NUL cannot be encoded), and any other
escaped character stands for itself.

An environment file is a list of `name = "value"` lines (`name` matches
`[a-zA-Z0-9][a-zA-Z0-9_]*`), `#` comments and free white space, with at least
one assignment.  A key file holds one quoted principal string and comments.
"""

from __future__ import annotations

from keynote.errors import KeyNoteError

__all__ = [
    "EnvFileError",
    "parse_env_file",
    "read_key_file",
    "scan_string",
    "unescape",
]

_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_REST = _NAME_FIRST | {"_"}


class EnvFileError(KeyNoteError, ValueError):
    """A syntax error in an environment, key or string; str() is `source:line:col: message`."""

    def __init__(self, source: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{source}:{line}:{column}: {message}")
        self.source = source
        self.line = line
        self.column = column
        self.message = message


def unescape(body: str) -> str:
    """Decode the text between the quotes of a KeyNote string literal.

    The rules live in one place, the assertion parser's literal decoder.
    """
    if "\\" not in body:
        return body
    from keynote.parse import unescape as decode_literal

    return decode_literal('"' + body + '"')


def scan_string(text: str, pos: int) -> tuple[str, int]:
    """Scan the literal whose opening quote is at `pos`; return (value, index after it).

    Raises ValueError with a message when the literal is not closed on its line.
    """
    i = pos + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return unescape(text[pos + 1 : i]), i + 1
        if c == "\\":
            i += 2
            continue
        if c == "\n":
            raise ValueError("newline inside a string literal (use a backslash before it)")
        i += 1
    raise ValueError("unterminated string literal")


class _Scanner:
    """Position bookkeeping shared by the env-file and key-file readers."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0

    def error(self, message: str, pos: int | None = None) -> EnvFileError:
        at = self.pos if pos is None else pos
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return EnvFileError(self.source, line, column, message)

    def skip_blanks(self) -> None:
        text = self.text
        n = len(text)
        while self.pos < n:
            c = text[self.pos]
            if c.isspace():
                self.pos += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            else:
                return

    def string(self) -> str:
        if self.pos >= len(self.text) or self.text[self.pos] != '"':
            raise self.error("expected a quoted string")
        try:
            value, self.pos = scan_string(self.text, self.pos)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        return value


def parse_env_file(text: str, source: str = "<env>") -> list[tuple[str, str]]:
    """Parse `name = "value"` assignments in file order (later ones override earlier)."""
    scan = _Scanner(text, source)
    result: list[tuple[str, str]] = []
    while True:
        scan.skip_blanks()
        if scan.pos >= len(text):
            break
        start = scan.pos
        if text[start] not in _NAME_FIRST:
            raise scan.error(f"expected an attribute name, found {text[start]!r}")
        end = start + 1
        while end < len(text) and text[end] in _NAME_REST:
            end += 1
        name = text[start:end]
        scan.pos = end
        scan.skip_blanks()
        if scan.pos >= len(text) or text[scan.pos] != "=":
            raise scan.error(f"expected '=' after {name!r}")
        scan.pos += 1
        scan.skip_blanks()
        result.append((name, scan.string()))
    if not result:
        raise scan.error('no assignments (at least one `name = "value"` is required)')
    return result


def read_key_file(text: str, source: str = "<key>") -> str:
    """The one quoted principal string of a key file (`#` comments allowed around it)."""
    scan = _Scanner(text, source)
    scan.skip_blanks()
    if scan.pos >= len(text):
        raise scan.error("no quoted key string")
    value = scan.string()
    scan.skip_blanks()
    if scan.pos < len(text):
        raise scan.error("text after the key string")
    return value
