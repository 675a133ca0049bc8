"""The KeyNote error types: one base class, one syntax error carrying its place."""

from __future__ import annotations


class KeyNoteError(Exception):
    """Any error the KeyNote layer raises on bad input; callers catch this one type."""


class KeyNoteSyntaxError(KeyNoteError):
    """An assertion (or a field of one) that does not parse or type-check.

    It names the source (file or assertion name), the field, the 1-based line and column in the
    source text, and the offending text, so `keynote syntax` can print `file:line:col: message`.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<string>",
        line: int = 1,
        column: int = 1,
        field: str = "",
        text: str = "",
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.field = field
        self.text = text
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        shown = f" near {_quote(self.text)}" if self.text else ""
        return f"{self.source}:{self.line}:{self.column}: {where}{self.message}{shown}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.message, self.source, self.line, self.column, self.field,
                           self.text))


def _rebuild(message: str, source: str, line: int, column: int, field: str,
             text: str) -> KeyNoteSyntaxError:
    """Unpickle helper (the keyword-only constructor cannot be called positionally)."""
    return KeyNoteSyntaxError(message, source=source, line=line, column=column, field=field,
                              text=text)


def _quote(text: str, limit: int = 40) -> str:
    """Show offending text on one short line, with control characters visible."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)
