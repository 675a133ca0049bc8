"""Explanations of a query: which assertions and clauses produced the answer.

`keynote verify --explain` and the daemon's policy log print str(trace); it is meant to be read
by an administrator asking "why was this SA refused?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from keynote.compile import ClauseTrace

_WS = re.compile(r"\s+")
_MAX_INDENT = 12
_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|#[^\n]*')


def _short(text: str, limit: int = 60) -> str:
    text = _COMMENT.sub(lambda m: m.group(1) or "", text)
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(slots=True)
class AssertionTrace:
    """How one assertion reached during the query evaluated."""

    aid: int
    where: str  # "source:line"
    authorizer: str
    trusted: bool
    conditions: int  # index of the Conditions Compliance Value
    clauses: list[ClauseTrace] = field(default_factory=list)
    licensees: int | None = None  # None: not evaluated (conditions gave _MIN_TRUST)
    principals: list[tuple[str, int]] = field(default_factory=list)
    signature: str = ""  # "", "verified" or the reason it failed
    result: int = 0
    children: list[int] = field(default_factory=list)
    text: str = ""  # the source text the clause offsets refer to
    licensees_text: str = ""
    key: str = ""  # the canonical authorizer (as principals are listed)


@dataclass(slots=True)
class Trace:
    """The whole explanation of one query."""

    values: tuple[str, ...]
    result: int
    authorizers: tuple[str, ...]
    roots: list[int]
    assertions: dict[int, AssertionTrace]
    failed: list[tuple[int, str]]
    direct: frozenset[str] = frozenset()  # canonical action authorizers

    def value(self, index: int) -> str:
        """The compliance value string at an index."""
        return self.values[index]

    def because(self) -> list[str]:
        """One delegation path that carries the answer: POLICY -> ... -> an action authorizer.

        At each step it follows a licensee whose value reaches the assertion's value (for
        `&&` every licensee does; for `||` and K-of, at least one), preferring an action
        authorizer, then an assertion by that licensee with that value.
        """
        if self.result == 0:
            return []
        by_key: dict[str, list[AssertionTrace]] = {}
        for t in self.assertions.values():
            by_key.setdefault(t.key, []).append(t)
        cur = next((self.assertions[r] for r in self.roots
                    if self.assertions[r].result == self.result), None)
        steps: list[str] = []
        seen: set[int] = set()
        while cur is not None and cur.aid not in seen:
            seen.add(cur.aid)
            steps.append(f"assertion {cur.aid} ({cur.where}) by {_short(cur.authorizer, 40)!r}"
                         f" = {self.values[cur.result]}")
            if cur.licensees is None:
                steps.append("(no Licensees field: the assertion itself grants the value)")
                break
            good = [p for p, pv in cur.principals if pv >= cur.result]
            direct = [p for p in good if p in self.direct]
            if direct:
                steps.append(f"licenses action authorizer {_short(direct[0], 40)!r}")
                break
            nxt = None
            for p in good:
                nxt = next((t for t in by_key.get(p, ()) if t.result >= cur.result), None)
                if nxt is not None:
                    break
            cur = nxt
        return steps

    def __str__(self) -> str:
        v = self.values
        lines = [f"Query result = {v[self.result]} (values, lowest first: {', '.join(v)})"]
        auth = ", ".join(_short(a, 40) for a in self.authorizers) or "(none)"
        lines.append(f"Action authorizers: {auth}")
        path = self.because()
        if path:
            lines.append("Because: " + path[0])
            lines.extend("  " + step for step in path[1:])
        if not self.roots:
            lines.append("No trusted POLICY assertion: the answer is the lowest value.")
        shown: set[int] = set()
        stack = [(r, 0) for r in reversed(self.roots)]
        while stack:
            aid, depth = stack.pop()
            pad = "  " * min(depth, _MAX_INDENT)
            if depth > _MAX_INDENT:  # long delegation chains: keep lines short, say how deep
                pad += f"[depth {depth}] "
            a = self.assertions[aid]
            if aid in shown:
                lines.append(f"{pad}assertion {aid} ({a.where}) = {v[a.result]} (see above)")
                continue
            shown.add(aid)
            kind = "trusted" if a.trusted else "credential"
            lines.append(f"{pad}assertion {aid} ({a.where}, {kind}) Authorizer "
                         f"{_short(a.authorizer, 40)!r} = {v[a.result]}")
            if a.signature:
                lines.append(f"{pad}  Signature: {a.signature}")
            if a.signature and a.signature != "verified":
                lines.append(f"{pad}  Conditions and Licensees not evaluated")
            else:
                lines.append(f"{pad}  Conditions = {v[a.conditions]}")
                lines.extend(self._clauses(a, pad))
            if a.licensees is not None:
                lines.append(f"{pad}  Licensees {_short(a.licensees_text)} = {v[a.licensees]}")
                for p, pv in a.principals:
                    lines.append(f"{pad}    {_short(p, 50)!r} = {v[pv]}")
            elif a.conditions == 0 and a.signature in ("", "verified"):
                lines.append(f"{pad}  Licensees not needed (Conditions gave the lowest value)")
            stack.extend((c, depth + 1) for c in reversed(a.children))
        for aid, why in self.failed:
            lines.append(f"Failed assertion {aid}: {why}")
        return "\n".join(lines)

    def _clauses(self, a: AssertionTrace, pad: str) -> list[str]:
        """One line per evaluated clause, and the attributes a failed test read."""
        v = self.values
        lines = []
        for c in a.clauses:
            cpad = pad + "    " + "  " * c.depth
            snippet = a.text[c.node.pos.offset : c.node.end]
            if c.node.block is not None:
                snippet = snippet.split("{", 1)[0] + "{ ... }"
            if c.value == ClauseTrace.ERROR:
                outcome = f"runtime error ({c.error}): test is false"
            elif c.value == ClauseTrace.FALSE:
                outcome = "test is false"
            else:
                outcome = f"-> {v[c.value]}"
            lines.append(f"{cpad}line {c.node.pos.line}: {_short(snippet)} {outcome}")
            if c.attributes and c.value < 0:
                reads = ", ".join(f"{n} = {_short(val, 30)!r}" for n, val in c.attributes[:6])
                lines.append(f"{cpad}  where {reads}")
        return lines
