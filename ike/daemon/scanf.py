"""A small C ``sscanf`` for the FIFO commands, whose exact parsing (reference/isakmpd.md 5) is
defined by ``sscanf`` formats such as ``"C %*s [%200[^]]]:%200[^=]=%200s %200s"``.

Supported directives: whitespace (skips any amount, also none), literal characters, ``%Ns``,
``%*s``, ``%d`` (saturated like ``strtol``), ``%N[...]`` / ``%N[^...]`` scan sets.  Like C,
``%s`` and ``%d`` skip leading whitespace, ``%[`` does not, and parsing stops at the first
mismatch; the result holds the conversions made so far (its length is C's return value).
"""

from __future__ import annotations

from ike.conf.parse import strtol

_WS = " \t\n\r\f\v"


def _scanset(fmt: str, i: int) -> tuple[set[str], bool, int]:
    """Parse ``[...]`` starting after ``[``; return (chars, negated, index after ``]``)."""
    negated = i < len(fmt) and fmt[i] == "^"
    if negated:
        i += 1
    chars: set[str] = set()
    if i < len(fmt) and fmt[i] == "]":
        chars.add("]")
        i += 1
    while i < len(fmt) and fmt[i] != "]":
        chars.add(fmt[i])
        i += 1
    return chars, negated, i + 1


def sscanf(text: str, fmt: str) -> list[str | int]:
    """Match *text* against *fmt*; return the conversions (``%*`` ones are not stored)."""
    out: list[str | int] = []
    t = 0
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch in _WS:
            while t < len(text) and text[t] in _WS:
                t += 1
            i += 1
            continue
        if ch != "%":
            if t >= len(text) or text[t] != ch:
                return out
            t += 1
            i += 1
            continue
        i += 1
        store = True
        if i < len(fmt) and fmt[i] == "*":
            store = False
            i += 1
        width = 0
        while i < len(fmt) and fmt[i].isdigit():
            width = width * 10 + int(fmt[i])
            i += 1
        conv = fmt[i]
        i += 1
        limit = width or len(text)
        if conv in "sd":
            while t < len(text) and text[t] in _WS:
                t += 1
        start = t
        if conv == "s":
            while t < len(text) and text[t] not in _WS and t - start < limit:
                t += 1
            if t == start:
                return out
            if store:
                out.append(text[start:t])
        elif conv == "d":
            if t < len(text) and text[t] in "+-":
                t += 1
            digits = t
            while t < len(text) and text[t].isdigit() and text[t].isascii() and t - start < limit:
                t += 1
            if t == digits:
                return out
            if store:
                out.append(strtol(text[start:t]))
        elif conv == "[":
            chars, negated, i = _scanset(fmt, i)
            while t < len(text) and (text[t] in chars) != negated and t - start < limit:
                t += 1
            if t == start:
                return out
            if store:
                out.append(text[start:t])
        else:
            raise ValueError(f"unsupported conversion %{conv}")
    return out
