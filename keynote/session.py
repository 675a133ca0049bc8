"""The KeyNote session: assertions, action attributes and authorizers, and queries.

The compliance checker follows RFC 2704 section 5. The Principal Compliance Value of POLICY is
computed over the delegation graph reachable from the trusted POLICY assertions: an iterative
depth-first walk (no recursion, so 10,000-deep delegation chains are fine) memoises each
assertion's Conditions value, then assertion values are computed in post-order. When the walk
met a cycle, passes repeat until nothing changes, which gives the least fixpoint: unlike the
reference (reference/keynote.md 2.2), the answer never depends on traversal order.
Untrusted assertions are authenticated (signature, once, cached) before their Conditions run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from keynote.ast import Assertion
from keynote.compile import (
    Attributes,
    ClauseTrace,
    Compiled,
    Env,
    compile_assertion,
    run_program_traced,
)
from keynote.errors import KeyNoteError, KeyNoteSyntaxError
from keynote.fields import LineMap, chunks, comment_only, split_assertion
from keynote.parse import MAX_CACHED_CHARS, load_cached, parse_assertion, store_cached
from keynote.trace import AssertionTrace, Trace

_ATTR_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_]*")

#: Reasons in Result.failed, as kn_get_failed's error types.
FAILED_SYNTAX = "syntax"
FAILED_SIGNATURE = "signature"


def _load_canonical() -> Callable[[str], str]:
    """keynote.keys.canonical_principal, imported on first use (it loads cryptography)."""
    from keynote.keys import canonical_principal

    return canonical_principal


def _load_verifier() -> Callable[[str], bool]:
    """keynote.sign.verify_assertion_cached, imported when a credential first needs checking
    (process-wide, so credentials pki already verified are not verified again)."""
    from keynote.sign import verify_assertion_cached

    return verify_assertion_cached


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


_NO_CLAUSES: list[ClauseTrace] = []  # shared, never appended to (untraced queries)

# Texts this process parsed without error, by (text, source), oldest first. The daemon
# builds a fresh Session from the same policy text for every ISAKMP SA, and parsing is about
# nine tenths of add_assertions; the AST is immutable, so sessions share it and each compiles
# its own closures. Sessions with the on-disk cache use that instead.
_PARSED: dict[tuple[str, str], tuple[Assertion, ...]] = {}
_PARSED_MAX = 32


class _Index:
    """What queries need from the assertion set; rebuilt after assertions change."""

    __slots__ = ("broken", "by_auth", "compiled", "dynamic", "kid_principals", "kids_all",
                 "roots", "untrusted")

    def __init__(self) -> None:
        self.by_auth: dict[str, list[int]] = {}  # canonical authorizer -> assertion ids
        self.dynamic: list[int] = []  # assertions whose Authorizer reads attributes
        self.roots: list[int] = []  # trusted POLICY assertions
        self.compiled: dict[int, Compiled] = {}
        self.untrusted: set[int] = set()
        self.broken: list[tuple[int, str]] = []
        # For assertions whose Licensees read no attributes: every assertion by a licensee,
        # and the licensees (the walk filters action authorizers out only if one is there).
        self.kids_all: dict[int, tuple[int, ...]] = {}
        self.kid_principals: dict[int, frozenset[str]] = {}


@dataclass(frozen=True, slots=True)
class Result:
    """The answer to a query: the value, its index, failures, and a trace on request."""

    value: str
    index: int
    trace: Trace | None
    failed: list[tuple[int, str]]  # (assertion id, FAILED_SYNTAX or FAILED_SIGNATURE)


class Session:
    """One KeyNote session (kn_init): parse once with add_assertions, query many times."""

    def __init__(self, cache: bool = False) -> None:
        """`cache=True` keeps parsed assertions in a private on-disk cache (keynote.parse):
        for short-lived processes such as `keynote verify`, which then skip Lark entirely."""
        self._disk_cache = cache
        self._entries: dict[int, _Entry] = {}
        self._next_id = 0
        self._attrs = Attributes()
        self._authorizers: list[str] = []  # most recently added first, as the reference
        self._canon_cache: dict[str, str] = {}
        self._canonical_fn: Callable[[str], str] | None = None
        self._index: _Index | None = None
        self._auth_state: tuple[str, frozenset[str]] | None = None
        self._vindex: dict[tuple[str, ...], dict[str, int]] = {}

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
        if not isinstance(text, str) or not isinstance(source, str):
            raise KeyNoteError("assertion text and source must be strings (decode files first)")
        staged: list[_Entry] = []
        key = (text, source)
        if self._disk_cache:
            cached: Sequence[Assertion] | None = load_cached(text, source)
        else:
            cached = _PARSED.get(key)
        if cached is not None:
            for a in cached:
                comp = compile_assertion(a, self.canonical, self._attrs)
                staged.append(_Entry(-1, comp, trusted, a.raw.raw, f"{source}:{a.raw.line}"))
        else:
            lines = LineMap(text)
            parsed: list[Assertion] = []
            for c in chunks(text):
                if comment_only(text, c):
                    continue
                where = f"{source}:{lines.position(c.start)[0]}"
                try:
                    raw = split_assertion(text, c, source, lines)
                    where = f"{source}:{raw.line}"
                    parsed_one = parse_assertion(raw)
                    assert parsed_one is not None
                    parsed.append(parsed_one)
                    comp = compile_assertion(parsed_one, self.canonical, self._attrs)
                    staged.append(_Entry(-1, comp, trusted, raw.raw, where))
                except KeyNoteSyntaxError as e:
                    if strict:
                        raise
                    staged.append(_Entry(-1, None, trusted, text[c.start : c.end], where,
                                         str(e)))
            if len(parsed) == len(staged):
                if self._disk_cache:
                    store_cached(text, source, parsed)
                elif len(text) <= MAX_CACHED_CHARS:
                    if len(_PARSED) >= _PARSED_MAX:
                        del _PARSED[next(iter(_PARSED))]
                    _PARSED[key] = tuple(parsed)
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

    def syntax_error(self, aid: int) -> str:
        """Why an assertion added with strict=False did not parse ("" if it did)."""
        try:
            return self._entries[aid].error
        except KeyError:
            raise KeyNoteError(f"no assertion with id {aid}") from None

    def assertion_ids(self) -> list[int]:
        """Ids of all assertions, in the order they were added."""
        return list(self._entries)

    # -- action authorizers and attributes
    def add_authorizer(self, principal: str) -> None:
        """Add an action authorizer (kn_add_authorizer; listed first in _ACTION_AUTHORIZERS)."""
        if not isinstance(principal, str):
            raise KeyNoteError(f"an action authorizer is a string, not {principal!r}")
        self._auth_state = None
        self._authorizers.insert(0, principal)

    def remove_authorizer(self, principal: str) -> None:
        """Remove an action authorizer by its text; KeyNoteError if absent."""
        self._auth_state = None
        try:
            self._authorizers.remove(principal)
        except ValueError:
            raise KeyNoteError(f"no action authorizer {principal!r}") from None

    def clear_authorizers(self) -> None:
        """Remove every action authorizer."""
        self._auth_state = None
        self._authorizers.clear()

    def set_attribute(self, name: str, value: str) -> None:
        """Set an action attribute; names starting with '_' are reserved (RFC 2704 s. 3)."""
        if not isinstance(name, str) or not _ATTR_NAME.fullmatch(name):
            raise KeyNoteError(f"invalid action attribute name {name!r}")
        if not isinstance(value, str):
            raise KeyNoteError(f"action attribute {name} must be a string, not {value!r}")
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
    def _build_index(self) -> _Index:
        idx = _Index()
        for aid, entry in self._entries.items():
            comp = entry.compiled
            if comp is None:
                idx.broken.append((aid, FAILED_SYNTAX))
                continue
            idx.compiled[aid] = comp
            if not entry.trusted:
                idx.untrusted.add(aid)
            if comp.authorizer_const is None:
                idx.dynamic.append(aid)
            else:
                idx.by_auth.setdefault(comp.authorizer_const, []).append(aid)
                if comp.authorizer_const == "POLICY" and entry.trusted:
                    idx.roots.append(aid)
        for aid, comp in idx.compiled.items():
            if not comp.dynamic_licensees:
                idx.kids_all[aid] = tuple(a for p in comp.static_licensees
                                          for a in idx.by_auth.get(p, ()))
                idx.kid_principals[aid] = frozenset(comp.static_licensees)
        self._index = idx
        return idx

    def _authorizer_state(self) -> tuple[str, frozenset[str]]:
        if self._auth_state is None:
            self._auth_state = (",".join(self._authorizers),
                                frozenset(self.canonical(a) for a in self._authorizers))
        return self._auth_state

    def query(self, values: Iterable[str], explain: bool = False) -> Result:
        """Evaluate the Policy Compliance Value for the current action (RFC 2704 s. 5).

        `values` are the compliance values, lowest first. The answer is one of them.
        """
        vals = tuple(values)
        if not vals:
            raise KeyNoteError("a query needs at least one compliance value")
        if not all(type(v) is str for v in vals):
            raise KeyNoteError("compliance values must be strings")
        maxi = len(vals) - 1
        vindex = self._vindex.get(vals)
        if vindex is None:
            vindex = {}
            for i in range(maxi, -1, -1):
                vindex[vals[i]] = i
            if len(self._vindex) > 64:
                self._vindex.clear()
            self._vindex[vals] = vindex
        auth_string, direct = self._authorizer_state()
        env = Env(self._attrs, vals, auth_string)
        idx = self._index or self._build_index()
        by_auth, roots, compiled, untrusted = idx.by_auth, idx.roots, idx.compiled, idx.untrusted
        kids_all, kid_principals = idx.kids_all, idx.kid_principals
        canon = self.canonical
        if idx.dynamic:
            kids_all = {}
            by_auth = {k: list(v) for k, v in by_auth.items()}
            roots = list(roots)
            for aid in idx.dynamic:
                key = canon(compiled[aid].authorizer(env))
                by_auth.setdefault(key, []).append(aid)
                if key == "POLICY" and aid not in untrusted:
                    roots.append(aid)
        pcv: dict[str, int] = dict.fromkeys(direct, maxi)
        traces: dict[int, AssertionTrace] | None = {} if explain else None
        failed: list[tuple[int, str]] = []

        # 1. Depth-first discovery from the POLICY roots (iterative: no recursion limit).
        cond: dict[int, int] = {}
        # post-order (delegates before the assertions that use them): (id, compiled, conditions)
        order: list[tuple[int, Compiled, int]] = []
        cyclic = False
        for root in roots:
            if root in cond:
                continue
            iters: list[Iterator[int]] = [iter((root,))]
            path: list[tuple[int, Compiled, int]] = [(-1, compiled[root], 0)]
            on_path: set[int] = set()
            while iters:
                for todo in iters[-1]:
                    if todo in cond:
                        if todo in on_path:
                            cyclic = True
                        continue
                    comp = compiled[todo]
                    clauses: list[ClauseTrace] = _NO_CLAUSES
                    # A credential is authenticated before its Conditions run: they are the
                    # sender's text (a costly regular expression, say) until the signature
                    # says otherwise. The reference checks after, and only if they held.
                    signature = ""
                    if todo in untrusted:
                        signature = self._check_signature(todo)
                    if signature and signature != "verified":
                        failed.append((todo, FAILED_SIGNATURE))
                        c = 0
                    elif comp.run is None:
                        c = maxi
                    elif traces is None:
                        c = comp.run(env, vindex)
                    else:
                        assert comp.conditions is not None
                        clauses = []
                        c = run_program_traced(comp.conditions, env, vindex,
                                               comp.assertion.local_constants, clauses)
                    children: Sequence[int] = ()
                    if c and comp.licensees is not None:
                        pre = kids_all.get(todo)
                        if pre is not None and direct.isdisjoint(kid_principals[todo]):
                            children = pre
                        else:
                            children = self._children(comp, env, by_auth, direct)
                    cond[todo] = c
                    if traces is not None:
                        entry = self._entries[todo]
                        traces[todo] = AssertionTrace(
                            todo, entry.where, comp.authorizer(env), entry.trusted, c,
                            list(clauses), signature=signature, children=list(children),
                            text=comp.assertion.raw.text)
                    iters.append(iter(children))
                    path.append((todo, comp, c))
                    on_path.add(todo)
                    break
                else:
                    iters.pop()
                    done = path.pop()
                    if done[0] >= 0:
                        on_path.discard(done[0])
                        order.append(done)

        # 2. Assertion and principal values, delegates first; repeat to a fixpoint on cycles.
        acv: dict[int, int] = {}
        changed = True
        while changed:
            changed = False
            for aid, comp, v in order:
                if v:
                    lic = comp.licensees
                    if lic is not None:
                        lv = lic(env, pcv)
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
        if idx.broken:
            failed += idx.broken
            failed.sort()
        trace = None
        if traces is not None:
            trace = self._finish_trace(traces, acv, pcv, env, vals, result, roots, failed)
        return Result(vals[result], result, trace, failed)

    def _children(self, comp: Compiled, env: Env, by_auth: dict[str, list[int]],
                  direct: frozenset[str]) -> list[int]:
        """Assertions by the licensees that are not action authorizers themselves."""
        children: list[int] = []
        for p in comp.static_licensees:
            if p not in direct:
                children += by_auth.get(p, ())
        for fn in comp.dynamic_licensees:
            p = self.canonical(fn(env))
            if p not in direct:
                children += by_auth.get(p, ())
        return children

    def _check_signature(self, aid: int) -> str:
        """Verify an untrusted assertion once (cached); "verified" or why it does not count."""
        entry = self._entries[aid]
        if entry.signature_ok is None:
            verify = _load_verifier()
            try:
                entry.signature_ok = bool(verify(entry.raw))
            except (KeyNoteError, ValueError):
                entry.signature_ok = False
        if entry.signature_ok:
            return "verified"
        return "signature does not verify: the credential counts as the lowest value"

    def _finish_trace(self, traces: dict[int, AssertionTrace], acv: dict[int, int],
                      pcv: dict[str, int], env: Env, vals: tuple[str, ...], result: int,
                      roots: list[int], failed: list[tuple[int, str]]) -> Trace:
        for aid, t in traces.items():
            t.result = acv.get(aid, 0)
            t.key = self.canonical(t.authorizer)
            comp = self._entries[aid].compiled
            assert comp is not None
            if t.conditions and comp.licensees is not None:
                t.licensees = comp.licensees(env, pcv)
                names = list(comp.static_licensees)
                names += [self.canonical(fn(env)) for fn in comp.dynamic_licensees]
                t.principals = [(p, pcv.get(p, 0)) for p in names]
                raw = comp.assertion.raw
                lic = raw.field("Licensees")
                t.licensees_text = raw.value(lic) if lic is not None else ""
        return Trace(vals, result, tuple(self._authorizers), list(roots), traces, list(failed),
                     self._authorizer_state()[1])

