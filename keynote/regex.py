"""POSIX extended regular expressions (regcomp REG_EXTENDED) translated to Python `re`.

KeyNote's `~=` uses POSIX ERE (RFC 2704 section 5.3.4; the reference calls regcomp with
REG_EXTENDED). Python's syntax differs in ways that change meaning: `\\` is literal inside a
bracket expression, `[[:alpha:]]` classes, `$` matching only at the very end, `a*?` meaning
"optional a*" rather than a lazy star, and a `(?...)` extension syntax that POSIX lacks.
Leftmost-longest versus leftmost-first matching can change what `_1`..`_N` capture when
alternatives overlap, but never whether a string matches.
"""

from __future__ import annotations

import re

_CLASSES = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "punct": "".join("\\" + c for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
    "cntrl": "\\x00-\\x1f\\x7f",
    "xdigit": "0-9A-Fa-f",
}
_INTERVAL = re.compile(r"\{(\d+)(,(\d*))?\}")
_ESCAPES = {"<": r"\b(?=\w)", ">": r"\b(?<=\w)", "`": r"\A", "'": r"\Z"}


def _bracket_char(c: str) -> str:
    return c if c.isalnum() else "\\" + c


def _bracket(p: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at p[i] == '['; return it and the next index."""
    n = len(p)
    j = i + 1
    neg = j < n and p[j] == "^"
    if neg:
        j += 1
    items: list[str] = []
    first = True
    while True:
        if j >= n:
            raise ValueError("unterminated bracket expression")
        c = p[j]
        if c == "]" and not first:
            break
        first = False
        if c == "[" and j + 1 < n and p[j + 1] in ":=.":
            kind = p[j + 1]
            end = p.find(kind + "]", j + 2)
            if end < 0:
                raise ValueError("unterminated [: :] class")
            name = p[j + 2 : end]
            j = end + 2
            if kind == ":":
                if name not in _CLASSES:
                    raise ValueError(f"unknown character class {name!r}")
                items.append(_CLASSES[name])
            elif len(name) == 1:
                items.append(_bracket_char(name))
            else:
                raise ValueError(f"unsupported collating element {name!r}")
            continue
        if j + 2 < n and p[j + 1] == "-" and p[j + 2] != "]":
            lo, hi = c, p[j + 2]
            if lo > hi:
                raise ValueError("invalid range end")
            items.append(_bracket_char(lo) + "-" + _bracket_char(hi))
            j += 3
            continue
        items.append(_bracket_char(c))
        j += 1
    return "[" + ("^" if neg else "") + "".join(items) + "]", j + 1


def translate(p: str) -> str:
    """Translate a POSIX ERE into an equivalent Python pattern; ValueError if invalid."""
    stack: list[list[str]] = []
    seq: list[str] = []  # atoms of the current group; "|" separates alternatives
    quantified: list[bool] = []
    qstack: list[list[bool]] = []
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        quant = None
        if c in "*+?":
            quant = c
            i += 1
        elif c == "{" and (m := _INTERVAL.match(p, i)):
            lo, hi = m.group(1), m.group(3)
            if len(lo) > 6 or len(hi or "") > 6:
                raise ValueError("interval bound too large")
            if hi and int(hi) < int(lo):
                raise ValueError("invalid interval")
            quant = m.group()
            i = m.end()
        if quant is not None:
            if not seq or seq[-1] == "|" or seq[-1] in ("^", r"\Z"):
                raise ValueError("repetition operator with nothing to repeat")
            if quantified[-1]:
                seq[-1] = "(?:" + seq[-1] + ")"
            seq[-1] += quant
            quantified[-1] = True
            continue
        if c == "(":
            stack.append(seq)
            qstack.append(quantified)
            seq, quantified = [], []
            i += 1
            continue
        if c == ")":
            if not stack:
                raise ValueError("unmatched )")
            atom = "(" + "".join(seq) + ")"
            seq, quantified = stack.pop(), qstack.pop()
            seq.append(atom)
            quantified.append(False)
            i += 1
            continue
        if c == "|":
            seq.append("|")
            quantified.append(False)
            i += 1
            continue
        if c == "[":
            atom, i = _bracket(p, i)
        elif c == "\\":
            if i + 1 >= n:
                raise ValueError("trailing backslash")
            e = p[i + 1]
            i += 2
            if e in "123456789wWsSbB":
                atom = "\\" + e
            else:
                atom = _ESCAPES.get(e) or re.escape(e)
        elif c == ".":
            atom = "."
            i += 1
        elif c == "^":
            atom = "^"
            i += 1
        elif c == "$":
            atom = r"\Z"
            i += 1
        else:
            atom = re.escape(c)
            i += 1
        seq.append(atom)
        quantified.append(False)
    if stack:
        raise ValueError("unmatched (")
    return "".join(seq)


# A pattern that does not compile is cached as its message, and each use raises a fresh
# ValueError: re-raising one cached exception object would chain every raise's frames onto its
# traceback, so a policy with a bad regex would hold more memory on every query.
_cache: dict[str, re.Pattern[str] | str] = {}


def compile_ere(pattern: str) -> re.Pattern[str]:
    """Compile a POSIX ERE (cached); raise ValueError when regcomp would fail."""
    hit = _cache.get(pattern)
    if hit is None:
        try:
            hit = re.compile(translate(pattern), re.S)
        except (ValueError, re.error, RecursionError, OverflowError) as e:
            hit = f"invalid regular expression {pattern!r}: {e}"
        if len(_cache) > 4096:
            _cache.clear()
        _cache[pattern] = hit
    if isinstance(hit, str):
        raise ValueError(hit)
    return hit
