"""Parse KeyNote assertions: hand-split fields, one Lark LALR start symbol per field.

keynote.fields splits the text; keynote.grammar (Lark, imported lazily) parses each field into
the frozen AST of keynote.ast. Nesting is bounded before Lark runs, and fields are bounded in
size by keynote.fields. Parsed assertions can be kept in a private on-disk cache (a pickle of
the AST, keyed by the text and by the parser's own source), so that a short-lived process such
as `keynote verify` neither loads Lark nor parses again what it parsed before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import stat
from typing import Any

from keynote.ast import Assertion
from keynote.errors import KeyNoteSyntaxError
from keynote.fields import Field, LineMap, RawAssertion, chunks, comment_only, split_assertion

#: Deepest nesting of parentheses, braces and unary operators accepted (the reference's yacc
#: stack allows far more, but no real policy comes close, and evaluation recurses per level).
MAX_DEPTH = 200


# ---------------------------------------------------------------------------------------------
# String literals (RFC 2704 section 4.3.1, with the reference's octal rules)

_ESCAPE_RE = re.compile(r"\\(\n[ \t\n\r\f\v]*|0[0-7]{0,2}|[1-7][0-7]{0,2}|.)", re.S)
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "f": "\f"}


def _escape(m: re.Match[str]) -> str:
    s = m.group(1)
    c = s[0]
    if c == "\n":
        return ""
    if c == "0":
        if len(s) > 1 and int(s, 8):
            return chr(int(s, 8))
        return s  # "\0" and "\00" stay literal digits: NUL cannot be written
    if "1" <= c <= "7":
        if len(s) == 3 and int(s, 8) & 0xFF:
            return chr(int(s, 8) & 0xFF)
        return s
    return _SIMPLE.get(c, c)


def unescape(literal: str) -> str:
    """Decode a quoted KeyNote string literal (the quotes included) into its value."""
    body = literal[1:-1]
    if "\\" not in body:
        return body
    return _ESCAPE_RE.sub(_escape, body)


# ---------------------------------------------------------------------------------------------
# Private on-disk caches (Lark's grammar tables, parsed assertions)

def private_cache_dir() -> str:
    """A cache directory only this user can write, or "" if there is none.

    The caches are pickles, so a directory someone else controls could run code: it must be
    ours and not group/world-writable.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tmp = os.environ.get("TMPDIR") or "/tmp"
    for d in (os.path.join(base, "keynote-py"), os.path.join(tmp, f"keynote-py-{os.getuid()}")):
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            st = os.lstat(d)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022:
            return d
    return ""


def cache_file(kind: str, key: str, suffix: str) -> str:
    """The path of a cache entry named by a digest of `key`, or "" without a private dir."""
    d = private_cache_dir()
    if not d:
        return ""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return os.path.join(d, f"{kind}-{digest}.{suffix}")


def _cache_path(grammar: str) -> str:
    """The Lark grammar cache for a grammar text (kept for callers of the old name)."""
    return cache_file("grammar", grammar, "lark-cache")


_code_digest: str | None = None
_PARSER_SOURCES = ("ast.py", "fields.py", "parse.py", "grammar.py", "keynote.lark")
#: Texts longer than this are not cached (the cache is for policy and credential files).
MAX_CACHED_CHARS = 1 << 20


def _parser_digest() -> str:
    """A digest of the parser's own source: a changed parser never reads stale ASTs."""
    global _code_digest
    if _code_digest is None:
        h = hashlib.sha256()
        here = os.path.dirname(os.path.abspath(__file__))
        for name in _PARSER_SOURCES:
            with open(os.path.join(here, name), "rb") as f:
                h.update(f.read())
        _code_digest = h.hexdigest()
    return _code_digest


def _ast_cache_file(text: str, source: str) -> str:
    if len(text) > MAX_CACHED_CHARS:
        return ""
    try:
        digest = _parser_digest()
    except OSError:  # sources not readable as files (a zip import): no AST cache
        return ""
    return cache_file("ast", f"{digest}\0{source}\0{text}", "pickle")


def load_cached(text: str, source: str) -> list[Assertion] | None:
    """The assertions of `text` as parsed before (by any process), or None."""
    path = _ast_cache_file(text, source)
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            stored = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError,
            IndexError, TypeError, ValueError):
        return None
    if (not isinstance(stored, tuple) or len(stored) != 3 or stored[0] != source
            or stored[1] != text):
        return None
    return list(stored[2])


def store_cached(text: str, source: str, assertions: list[Assertion]) -> None:
    """Remember parsed assertions (written atomically; failures are ignored: it is a cache)."""
    path = _ast_cache_file(text, source)
    if not path:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump((source, text, tuple(assertions)), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, RecursionError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------
# Assertions

def parse_field(raw: RawAssertion, field: Field) -> Any:
    """Parse one field's value with its start symbol; raise KeyNoteSyntaxError."""
    from keynote.grammar import parse_field as parse_with_lark

    return parse_with_lark(raw, field)


def parse_assertion(raw: RawAssertion, errors: list[KeyNoteSyntaxError] | None = None
                    ) -> Assertion | None:
    """Parse every field of a split assertion.

    Without `errors`, the first error is raised. With a list, every field's error is appended
    to it (one per field) and None is returned if there was any.
    """
    values: dict[str, Any] = {}
    failed = False
    for f in raw.fields:
        if f.name == "Comment":
            continue
        try:
            values[f.name] = parse_field(raw, f)
            if f.name == "KeyNote-Version" and values[f.name][0] != "2":
                v, pos = values[f.name]
                raise KeyNoteSyntaxError("KeyNote-Version must be 2", source=raw.source,
                                         line=pos.line, column=pos.column, field=f.name,
                                         text=v)
        except KeyNoteSyntaxError as e:
            if errors is None:
                raise
            errors.append(e)
            failed = True
    if failed:
        return None
    version = values.get("KeyNote-Version")
    return Assertion(
        raw=raw,
        version=version[0] if version else None,
        local_constants=values.get("Local-Constants", {}),
        authorizer=values["Authorizer"],
        licensees=values.get("Licensees"),
        conditions=values.get("Conditions"),
        signature=values.get("Signature"),
    )


def parse_text(text: str, source: str = "<string>") -> list[Assertion]:
    """Parse every assertion of a text; raise KeyNoteSyntaxError on the first error."""
    lines = LineMap(text)
    out = []
    for c in chunks(text):
        if comment_only(text, c):
            continue
        a = parse_assertion(split_assertion(text, c, source, lines))
        assert a is not None
        out.append(a)
    return out


def check_text(text: str, source: str = "<string>") -> list[KeyNoteSyntaxError]:
    """Return every syntax error of a text (for `keynote syntax`): at most one per field."""
    lines = LineMap(text)
    errors: list[KeyNoteSyntaxError] = []
    for c in chunks(text):
        if comment_only(text, c):
            continue
        try:
            raw = split_assertion(text, c, source, lines)
        except KeyNoteSyntaxError as e:
            errors.append(e)
            continue
        parse_assertion(raw, errors)
    return errors
