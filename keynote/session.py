"""The KeyNote session: assertions, action attributes and authorizers, and queries.

The compliance checker follows RFC 2704 section 5. The Principal Compliance Value of POLICY is
computed over the delegation graph reachable from the trusted POLICY assertions: an iterative
depth-first walk (no recursion, so 10,000-deep delegation chains are fine) memoises each
assertion's Conditions value, then assertion values are computed in post-order. When the walk
met a cycle, passes repeat until nothing changes, which gives the least fixpoint: unlike the
reference (reference/keynote.md 2.2), the answer never depends on traversal order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from keynote.ast import Assertion
from keynote.compile import (
    Attributes,
    ClauseTrace,
    Compiled,
    Env,
    compile_assertion,
    run_program,
    run_program_traced,
)
from keynote.errors import KeyNoteError, KeyNoteSyntaxError
from keynote.fields import LineMap, chunks, split_assertion
from keynote.parse import parse_assertion
from keynote.trace import AssertionTrace, Trace

_ATTR_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_]*")

#: Reasons in Result.failed, as kn_get_failed's error types.
FAILED_SYNTAX = "syntax"
FAILED_SIGNATURE = "signature"


def _identity(text: str) -> str:
    return text


def _load_canonical() -> Callable[[str], str]:
    """keynote.keys.canonical_principal (kn-cli's), imported lazily; identity if absent."""
    try:
        from keynote.keys import canonical_principal
    except ImportError:
        return _identity
    return canonical_principal


def _load_verifier() -> Callable[[str], bool] | None:
    try:
        from keynote.sign import verify_assertion
    except ImportError:
        return None
    return verify_assertion


@dataclass(slots=True)
class _Entry:
    aid: int
    compiled: Compiled | None  # None: the assertion did not parse (lenient add)
    trusted: bool
    raw: str
    where: str
    error: str = ""
    signature_ok: bool | None = None  # cached verification result

    @property
    def assertion(self) -> Assertion | None:
        return self.compiled.assertion if self.compiled else None


@dataclass(frozen=True, slots=True)
class Result:
    """The answer to a query: the value, its index, failures, and a trace on request."""

    value: str
    index: int
    trace: Trace | None
    failed: list[tuple[int, str]]  # (assertion id, FAILED_SYNTAX or FAILED_SIGNATURE)


class Session:
    """One KeyNote session (kn_init): parse once with add_assertions, query many times."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._next_id = 0
        self._attrs = Attributes()
        self._authorizers: list[str] = []  # most recently added first, as the reference
        self._canon_cache: dict[str, str] = {}
        self._canonical_fn: Callable[[str], str] | None = None
        self._index: tuple[dict[str, list[int]], list[int], list[int]] | None = None

    # -- principals
    def canonical(self, principal: str) -> str:
        """The canonical form of a principal (cached): equal keys compare equal."""
        c = self._canon_cache.get(principal)
        if c is None:
            if self._canonical_fn is None:
                self._canonical_fn = _load_canonical()
            try:
                c = self._canonical_fn(principal)
            except (ValueError, KeyNoteError):
                c = principal
            if len(self._canon_cache) > 65536:
                self._canon_cache.clear()
            self._canon_cache[principal] = c
        return c

    # -- assertions
    def add_assertions(self, text: str, trusted: bool = False, source: str = "<string>",
                       strict: bool = True) -> list[int]:
        """Parse and compile every assertion of `text` (blank-line separated); return ids.

        strict=True raises KeyNoteSyntaxError on the first error and adds nothing. With
        strict=False a broken assertion still gets an id, never grants anything, and is listed
        in every Result.failed as a syntax failure (the reference's kn_add_assertion with
        lazily parsed fields behaves much like this).
        """
        lines = LineMap(text)
        staged: list[_Entry] = []
        for n, c in enumerate(chunks(text)):
            where = f"{source}:{lines.position(c.start)[0]}"
            try:
                raw = split_assertion(text, c, source, lines)
                where = f"{source}:{raw.line}"
                a = parse_assertion(raw)
                assert a is not None
                comp = compile_assertion(a, self.canonical)
                staged.append(_Entry(-1, comp, trusted, raw.raw, where))
            except KeyNoteSyntaxError as e:
                if strict:
                    raise
                staged.append(_Entry(-1, None, trusted, text[c.start : c.end], where, str(e)))
            del n
        ids = []
        for entry in staged:
            entry.aid = self._next_id
            self._next_id += 1
            self._entries[entry.aid] = entry
            ids.append(entry.aid)
        self._index = None
        return ids

    def remove_assertion(self, aid: int) -> None:
        """Forget an assertion; KeyNoteError if there is no such id."""
        if self._entries.pop(aid, None) is None:
            raise KeyNoteError(f"no assertion with id {aid}")
        self._index = None

    def assertion(self, aid: int) -> Assertion | None:
        """The parsed assertion of an id (None if it did not parse)."""
        try:
            return self._entries[aid].assertion
        except KeyError:
            raise KeyNoteError(f"no assertion with id {aid}") from None

    def assertion_ids(self) -> list[int]:
        """Ids of all assertions, in the order they were added."""
        return list(self._entries)

    # -- action authorizers and attributes
    def add_authorizer(self, principal: str) -> None:
        """Add an action authorizer (kn_add_authorizer; listed first in _ACTION_AUTHORIZERS)."""
        self._authorizers.insert(0, principal)

    def remove_authorizer(self, principal: str) -> None:
        """Remove an action authorizer by its text; KeyNoteError if absent."""
        try:
            self._authorizers.remove(principal)
        except ValueError:
            raise KeyNoteError(f"no action authorizer {principal!r}") from None

    def clear_authorizers(self) -> None:
        """Remove every action authorizer."""
        self._authorizers.clear()

    def set_attribute(self, name: str, value: str) -> None:
        """Set an action attribute; names starting with '_' are reserved (RFC 2704 s. 3)."""
        if not _ATTR_NAME.fullmatch(name):
            raise KeyNoteError(f"invalid action attribute name {name!r}")
        self._attrs[name] = value

    def remove_attribute(self, name: str) -> None:
        """Remove an action attribute if set."""
        self._attrs.pop(name, None)

    def clear_attributes(self) -> None:
        """Remove every action attribute (kn_cleanup_action_environment)."""
        self._attrs.clear()

    def set_attribute_provider(self, provider: Callable[[str], str | None] | None) -> None:
        """Ask `provider(name)` for attributes not set explicitly (isakmpd's callback)."""
        self._attrs.provider = provider

    # -- the compliance checker
    def _build_index(self) -> tuple[dict[str, list[int]], list[int], list[int]]:
        by_auth: dict[str, list[int]] = {}
        dynamic: list[int] = []
        roots: list[int] = []
        for aid, entry in self._entries.items():
            comp = entry.compiled
            if comp is None:
                continue
            if comp.authorizer_const is None:
                dynamic.append(aid)
            else:
                by_auth.setdefault(comp.authorizer_const, []).append(aid)
                if comp.authorizer_const == "POLICY" and entry.trusted:
                    roots.append(aid)
        self._index = (by_auth, dynamic, roots)
        return self._index

    def query(self, values: Iterable[str], explain: bool = False) -> Result:
        """Evaluate the Policy Compliance Value for the current action (RFC 2704 s. 5).

        `values` are the compliance values, lowest first. The answer is one of them.
        """
        vals = tuple(values)
        if not vals:
            raise KeyNoteError("a query needs at least one compliance value")
        maxi = len(vals) - 1
        vindex: dict[str, int] = {}
        for i in range(maxi, -1, -1):
            vindex[vals[i]] = i
        env = Env(self._attrs, vals, ",".join(self._authorizers))
        by_auth, dynamic, roots = self._index or self._build_index()
        entries = self._entries
        if dynamic:
            by_auth = {k: list(v) for k, v in by_auth.items()}
            roots = list(roots)
            for aid in dynamic:
                comp = entries[aid].compiled
                assert comp is not None
                key = self.canonical(comp.authorizer(env))
                by_auth.setdefault(key, []).append(aid)
                if key == "POLICY" and entries[aid].trusted:
                    roots.append(aid)
        canon = self.canonical
        pcv: dict[str, int] = {canon(a): maxi for a in self._authorizers}
        direct = frozenset(pcv)
        traces: dict[int, AssertionTrace] | None = {} if explain else None
        failed: list[tuple[int, str]] = []

        cond: dict[int, int] = {}
        kids: dict[int, list[int]] = {}
        order: list[int] = []
        cyclic = False
        for root in roots:
            if root in cond:
                continue
            self._visit(root, env, vindex, cond, kids, by_auth, direct, traces, failed)
            stack = [root]
            pos = [0]
            on_stack = {root}
            while stack:
                aid = stack[-1]
                ch = kids[aid]
                i = pos[-1]
                if i < len(ch):
                    pos[-1] = i + 1
                    nxt = ch[i]
                    if nxt in cond:
                        if nxt in on_stack:
                            cyclic = True
                        continue
                    self._visit(nxt, env, vindex, cond, kids, by_auth, direct, traces, failed)
                    stack.append(nxt)
                    pos.append(0)
                    on_stack.add(nxt)
                else:
                    stack.pop()
                    pos.pop()
                    on_stack.discard(aid)
                    order.append(aid)

        acv: dict[int, int] = {}
        changed = True
        while changed:
            changed = False
            for aid in order:
                v = cond[aid]
                comp = entries[aid].compiled
                assert comp is not None
                if v:
                    if comp.licensees is not None:
                        lv = comp.licensees(env, pcv)
                        if lv < v:
                            v = lv
                    elif comp.licensees_empty:
                        v = 0
                if acv.get(aid, -1) != v:
                    acv[aid] = v
                    akey = comp.authorizer_const
                    if akey is None:
                        akey = canon(comp.authorizer(env))
                    if v > pcv.get(akey, 0):
                        pcv[akey] = v
                        changed = cyclic
        result = 0
        for r in roots:
            v = acv.get(r, 0)
            if v > result:
                result = v
        for aid, entry in entries.items():
            if entry.compiled is None:
                failed.append((aid, FAILED_SYNTAX))
        failed.sort()
        trace = None
        if traces is not None:
            trace = self._finish_trace(traces, acv, pcv, env, vals, result, roots, kids, failed)
        return Result(vals[result], result, trace, failed)

    def _visit(self, aid: int, env: Env, vindex: dict[str, int], cond: dict[int, int],
               kids: dict[int, list[int]], by_auth: dict[str, list[int]], direct: frozenset[str],
               traces: dict[int, AssertionTrace] | None, failed: list[tuple[int, str]]) -> None:
        """Evaluate an assertion's Conditions and list the assertions it delegates to."""
        entry = self._entries[aid]
        comp = entry.compiled
        assert comp is not None
        clauses: list[ClauseTrace] = []
        if comp.conditions is None:
            c = env.maxi
        elif traces is None:
            c = run_program(comp.conditions, env, vindex)
        else:
            c = run_program_traced(comp.conditions, env, vindex, clauses)
        signature = ""
        if c and not entry.trusted:
            if entry.signature_ok is None:
                verify = _load_verifier()
                entry.signature_ok = bool(verify is not None and verify(entry.raw))
            if entry.signature_ok:
                signature = "verified"
            else:
                signature = "signature does not verify: the credential counts as the lowest value"
                failed.append((aid, FAILED_SIGNATURE))
                c = 0
        cond[aid] = c
        children: list[int] = []
        if c and comp.licensees is not None:
            principals = list(comp.static_licensees)
            for fn in comp.dynamic_licensees:
                principals.append(self.canonical(fn(env)))
            for p in principals:
                if p not in direct:
                    children.extend(by_auth.get(p, ()))
        kids[aid] = children
        if traces is not None:
            auth = comp.authorizer(env)
            traces[aid] = AssertionTrace(aid, entry.where, auth, entry.trusted, c, clauses,
                                         signature=signature, children=children,
                                         text=comp.assertion.raw.text)

    def _finish_trace(self, traces: dict[int, AssertionTrace], acv: dict[int, int],
                      pcv: dict[str, int], env: Env, vals: tuple[str, ...], result: int,
                      roots: list[int], kids: dict[int, list[int]],
                      failed: list[tuple[int, str]]) -> Trace:
        for aid, t in traces.items():
            t.result = acv.get(aid, 0)
            comp = self._entries[aid].compiled
            assert comp is not None
            if t.conditions and comp.licensees is not None:
                t.licensees = comp.licensees(env, pcv)
                names = list(comp.static_licensees)
                names += [self.canonical(fn(env)) for fn in comp.dynamic_licensees]
                t.principals = [(p, pcv.get(p, 0)) for p in names]
        return Trace(vals, result, tuple(self._authorizers), list(roots), traces, list(failed))

