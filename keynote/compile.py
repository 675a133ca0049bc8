"""Compile a parsed assertion once into Python closures; a query then does no parsing.

Semantics where RFC 2704 is silent follow the reference library (reference/keynote.md 1.11):
32-bit C int arithmetic, truncating `/` and `%`, left-associative `^` by repeated squaring
(negative exponent gives 0), `@`/`&` gated by the reference's isfloatstring. A runtime error
(division by zero, invalid regular expression) raises _Fault, which makes the enclosing
clause's test false; evaluation goes on with the next clause (RFC 2704 section 5.3.4).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from keynote.ast import (
    Assertion,
    Binary,
    Bool,
    Clause,
    Concat,
    Empty,
    Expr,
    Float,
    Int,
    KOf,
    Logic,
    Name,
    Str,
    Unary,
)
from keynote.regex import compile_ere

_TEMP_RE = re.compile(r"_[0-9]+")
_FLOATSTR = re.compile(r"[0-9]*\.?[0-9]*")
_INT_MIN = -(1 << 31)


def _temp_index(name: str) -> int:
    """The group number of `_N` (absurdly long numbers are just past every group)."""
    return int(name[1:]) if len(name) <= 6 else 1 << 20


class Fault(Exception):
    """A runtime error inside a Conditions test (makes that test false)."""


class Attributes(dict[str, str]):
    """Action attributes; a missing name asks the provider (if any), else reads as ""."""

    provider: Callable[[str], str | None] | None = None

    def __missing__(self, name: str) -> str:
        if self.provider is not None:
            v = self.provider(name)
            if v is not None:
                return v
        return ""


class Env:
    """Per-query evaluation state shared by all closures of a query."""

    __slots__ = ("attrs", "authorizers", "groups", "max_trust", "maxi", "min_trust", "values")

    def __init__(self, attrs: Attributes, values: tuple[str, ...], authorizers: str) -> None:
        self.attrs = attrs
        self.values = ",".join(values)
        self.min_trust = values[0]
        self.max_trust = values[-1]
        self.maxi = len(values) - 1
        self.authorizers = authorizers
        self.groups: tuple[str, ...] = ()


Fn = Callable[[Env], Any]


def wrap32(v: int) -> int:
    """Reduce an integer to a C int (two's complement, 32 bits)."""
    if -0x80000000 <= v <= 0x7FFFFFFF:
        return v
    return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def to_int(s: str) -> int:
    """`@s`: (int)floor(atof(s)) when s is digits with at most one '.', else 0."""
    if not s or not _FLOATSTR.fullmatch(s):
        return 0
    f = float(s) if s != "." else 0.0
    if not -2147483648.0 <= f < 2147483648.0:
        return _INT_MIN  # what x86 gives for an out-of-range double to int conversion
    return math.floor(f)


def to_float(s: str) -> float:
    """`&s`: atof(s) when s is digits with at most one '.', else 0.0."""
    if not s or s == "." or not _FLOATSTR.fullmatch(s):
        return 0.0
    return float(s)


def _idiv(a: int, b: int) -> int:
    if b == 0:
        raise Fault("integer division by zero")
    q = abs(a) // abs(b)
    return wrap32(-q if (a < 0) != (b < 0) else q)


def _imod(a: int, b: int) -> int:
    if b == 0:
        raise Fault("integer modulo by zero")
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _ipow(a: int, b: int) -> int:
    if b < 0:
        return 0
    return wrap32(pow(a, b, 1 << 32))


def _fdiv(a: float, b: float) -> float:
    if b == 0.0:
        raise Fault("float division by zero")
    return a / b


def _fpow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.inf if a == 0.0 else math.nan


_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: wrap32(a + b),
    "-": lambda a, b: wrap32(a - b),
    "*": lambda a, b: wrap32(a * b),
    "/": _idiv,
    "%": _imod,
    "^": _ipow,
}
_FLOAT_OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _fdiv,
    "^": _fpow,
}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def regex_match(e: Env, subject: str, pattern: str) -> bool:
    """`subject ~= pattern`: unanchored POSIX ERE search; sets _0 (group count) and _1.._N."""
    e.groups = ()
    try:
        rx = compile_ere(pattern)
    except ValueError as err:
        raise Fault(str(err)) from None
    m = rx.search(subject)
    if m is None:
        return False
    groups = [str(rx.groups)]
    for g in m.groups():
        if g is None:
            break
        groups.append(g)
    e.groups = tuple(groups)
    return True


def lookup(e: Env, consts: Mapping[str, str], name: str) -> str:
    """Attribute lookup order of the reference: specials, regex groups, constants, actions."""
    if name[:1] == "_":
        if name == "_MIN_TRUST":
            return e.min_trust
        if name == "_MAX_TRUST":
            return e.max_trust
        if name == "_VALUES":
            return e.values
        if name == "_ACTION_AUTHORIZERS":
            return e.authorizers
        if _TEMP_RE.fullmatch(name):
            i = _temp_index(name)
            g = e.groups
            return g[i] if i < len(g) else ""
    v = consts.get(name)
    if v is not None:
        return v
    return e.attrs[name]


class _NotConst:
    pass


_NC = _NotConst()


class Compiler:
    """Turns the expressions of one assertion into closures over its Local-Constants."""

    def __init__(self, consts: Mapping[str, str], attrs: Attributes | None = None) -> None:
        self.consts = consts
        # The session's attribute mapping, captured directly by the closures (it lives as long
        # as the session); without one, closures read the per-query Env's.
        self.attrs = attrs

    def expr(self, node: Expr) -> Fn:
        """Compile an expression; constant sub-expressions are folded when they cannot fail."""
        fn, value = self._expr(node)
        if value is not _NC:
            return lambda e: value
        return fn

    def _expr(self, node: Expr) -> tuple[Fn, Any]:
        if isinstance(node, (Str, Int, Float, Bool)):
            v = node.value
            return (lambda e: v), v
        if isinstance(node, Name):
            return self._name(node.name)
        if isinstance(node, Concat):
            parts = [self._expr(i) for i in node.items]
            if all(v is not _NC for _, v in parts):
                s = "".join(v for _, v in parts)
                return (lambda e: s), s
            fns = [f for f, _ in parts]
            if len(fns) == 2:
                f1, f2 = fns
                return (lambda e: f1(e) + f2(e)), _NC
            return (lambda e: "".join([f(e) for f in fns])), _NC
        if isinstance(node, Logic):
            return _logic(node.op, [self._expr(i)[0] for i in node.items]), _NC
        if isinstance(node, Unary):
            return self._unary(node)
        if isinstance(node, Binary):
            return self._binary(node)
        raise TypeError(f"not a Conditions expression: {type(node).__name__}")

    def _name(self, name: str) -> tuple[Fn, Any]:
        if name == "_MIN_TRUST":
            return (lambda e: e.min_trust), _NC
        if name == "_MAX_TRUST":
            return (lambda e: e.max_trust), _NC
        if name == "_VALUES":
            return (lambda e: e.values), _NC
        if name == "_ACTION_AUTHORIZERS":
            return (lambda e: e.authorizers), _NC
        if _TEMP_RE.fullmatch(name):
            i = _temp_index(name)
            return (lambda e: e.groups[i] if i < len(e.groups) else ""), _NC
        if name in self.consts:
            v = self.consts[name]
            return (lambda e: v), v
        attrs = self.attrs
        if attrs is not None:
            return (lambda e: attrs[name]), _NC
        return (lambda e: e.attrs[name]), _NC

    def _attribute(self, node: Expr) -> str | None:
        """The attribute name if `node` reads an action attribute directly."""
        if (self.attrs is not None and isinstance(node, Name) and node.name[:1] != "_"
                and node.name not in self.consts):
            return node.name
        return None

    def _unary(self, node: Unary) -> tuple[Fn, Any]:
        f, v = self._expr(node.operand)
        op = node.op
        if op == "$":
            consts = self.consts
            if v is not _NC:
                return self._name(v) if v else ((lambda e: ""), "")
            return (lambda e: lookup(e, consts, f(e))), _NC
        conv: Callable[[Any], Any]
        if op == "!":
            return (lambda e: not f(e)), _NC
        if op == "-":
            conv = (lambda x: wrap32(-x)) if node.kind == "int" else (lambda x: -x)
        elif op == "@":
            conv = to_int
        else:
            conv = to_float
        if v is not _NC:
            r = conv(v)
            return (lambda e: r), r
        return (lambda e: conv(f(e))), _NC

    def _binary(self, node: Binary) -> tuple[Fn, Any]:
        fa, va = self._expr(node.left)
        fb, vb = self._expr(node.right)
        op = node.op
        if op == "~=":
            if vb is not _NC:
                try:
                    compile_ere(vb)
                except ValueError:
                    pass  # stays a runtime error, reported when the test runs
            return (lambda e: regex_match(e, fa(e), fb(e))), _NC
        if op in _CMP:
            if vb is not _NC and op in ("==", "!="):
                c = vb
                name = self._attribute(node.left)
                if name is not None:
                    attrs = self.attrs
                    assert attrs is not None
                    if op == "==":
                        return (lambda e: attrs[name] == c), _NC
                    return (lambda e: attrs[name] != c), _NC
                if op == "==":
                    return (lambda e: fa(e) == c), _NC
                return (lambda e: fa(e) != c), _NC
            cmp = _CMP[op]
            return (lambda e: cmp(fa(e), fb(e))), _NC
        fop: Callable[[Any, Any], Any] = (_INT_OPS if node.kind == "int" else _FLOAT_OPS)[op]
        if va is not _NC and vb is not _NC:
            try:
                r = fop(va, vb)
            except Fault:
                pass
            else:
                return (lambda e: r), r
        return (lambda e: fop(fa(e), fb(e))), _NC


def _logic(op: str, fns: list[Fn]) -> Fn:
    """`&&` / `||` over a flat chain, short-circuiting (RFC semantics, no donteval quirk)."""
    if op == "&&":
        if len(fns) == 2:
            a, b = fns
            return lambda e: a(e) and b(e)
        if len(fns) == 3:
            a, b, c = fns
            return lambda e: a(e) and b(e) and c(e)

        def all_of(e: Env) -> bool:
            for f in fns:  # noqa: SIM110 - a plain loop is faster than all(genexpr)
                if not f(e):
                    return False
            return True
        return all_of
    if len(fns) == 2:
        a, b = fns
        return lambda e: a(e) or b(e)

    def any_of(e: Env) -> bool:
        for f in fns:  # noqa: SIM110 - a plain loop is faster than any(genexpr)
            if f(e):
                return True
        return False
    return any_of


# ---------------------------------------------------------------------------------------------
# Conditions programs

@dataclass(frozen=True, slots=True)
class CClause:
    """A compiled clause: test, and a value (None: _MAX_TRUST) or a nested block."""

    test: Fn
    value: Fn | None
    block: tuple[CClause, ...] | None
    node: Clause
    const: str | None  # the value when it is a constant string (no call needed)
    names: tuple[str, ...] = ()  # attributes the test reads (shown by explanations)


def names_in(node: Expr) -> tuple[str, ...]:
    """Attribute names an expression reads directly, in order, without repeats."""
    names: dict[str, None] = {}
    todo: list[Expr] = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, Name):
            names[n.name] = None
        elif isinstance(n, Unary):
            todo.append(n.operand)
        elif isinstance(n, Binary):
            todo += (n.right, n.left)
        elif isinstance(n, (Logic, Concat, KOf)):
            todo += reversed(n.items)
    return tuple(names)


def compile_program(clauses: tuple[Clause, ...], c: Compiler) -> tuple[CClause, ...]:
    """Compile a Conditions program (nested blocks compiled recursively, bounded by parse)."""
    out = []
    for cl in clauses:
        block = compile_program(cl.block, c) if cl.block is not None else None
        value: Fn | None = None
        const = None
        if cl.value is not None:
            value, v = c._expr(cl.value)
            if v is not _NC:
                const = v
        out.append(CClause(c.expr(cl.test), value, block, cl, const, names_in(cl.test)))
    return tuple(out)


_FAULTS = (Fault, ArithmeticError, ValueError)


def run_program(prog: tuple[CClause, ...], e: Env, vindex: Mapping[str, int]) -> int:
    """Conditions Compliance Value: the max over clauses whose test holds.

    Each clause starts with the enclosing clause's regex groups (`_0`..`_N` are valid within
    the clause that set them, including its nested block: RFC 2704 section 5.3.4).
    """
    best = 0
    top = e.maxi
    saved = e.groups
    for cl in prog:
        if e.groups is not saved:
            e.groups = saved
        try:
            if not cl.test(e):
                continue
        except _FAULTS:
            continue
        if cl.const is not None:
            v = vindex.get(cl.const, 0)
        elif cl.block is not None:
            v = run_program(cl.block, e, vindex)
        elif cl.value is None:
            v = top
        else:
            v = vindex.get(cl.value(e), 0)
        if v > best:
            best = v
            if v == top:
                break
    e.groups = saved
    return best


ProgramFn = Callable[[Env, Mapping[str, int]], int]


def program_fn(prog: tuple[CClause, ...]) -> ProgramFn:
    """One callable for a top-level program; the common single-clause case avoids the loop."""
    if len(prog) != 1 or prog[0].block is not None:
        return lambda e, vindex: run_program(prog, e, vindex)
    (cl,) = prog
    test, value, const = cl.test, cl.value, cl.const

    def one_clause(e: Env, vindex: Mapping[str, int]) -> int:
        try:
            ok = test(e)
        except _FAULTS:
            ok = False
        if not ok:
            v = 0
        elif const is not None:
            v = vindex.get(const, 0)
        elif value is None:
            v = e.maxi
        else:
            v = vindex.get(value(e), 0)
        if e.groups:
            e.groups = ()
        return v
    return one_clause


@dataclass(frozen=True, slots=True)
class ClauseTrace:
    """One evaluated clause, for explanations."""

    node: Clause
    value: int  # index of the value it produced; FALSE: test false; ERROR: runtime error
    error: str
    depth: int
    attributes: tuple[tuple[str, str], ...] = ()  # values of the attributes the test read

    FALSE = -2
    ERROR = -1


def run_program_traced(prog: tuple[CClause, ...], e: Env, vindex: Mapping[str, int],
                       consts: Mapping[str, str], out: list[ClauseTrace],
                       depth: int = 0) -> int:
    """Same result as run_program, recording every clause and what its test read."""
    best = 0
    top = e.maxi
    saved = e.groups
    for cl in prog:
        e.groups = saved
        seen = tuple((n, lookup(e, consts, n)) for n in cl.names)
        try:
            ok = cl.test(e)
        except _FAULTS as err:
            out.append(ClauseTrace(cl.node, ClauseTrace.ERROR, str(err) or type(err).__name__,
                                   depth, seen))
            continue
        if not ok:
            out.append(ClauseTrace(cl.node, ClauseTrace.FALSE, "", depth, seen))
            continue
        slot = len(out)
        out.append(ClauseTrace(cl.node, 0, "", depth, seen))
        if cl.block is not None:
            v = run_program_traced(cl.block, e, vindex, consts, out, depth + 1)
        elif cl.value is None:
            v = top
        else:
            v = vindex.get(cl.value(e), 0)
        out[slot] = ClauseTrace(cl.node, v, "", depth, seen)
        best = max(best, v)
    e.groups = saved
    return best


# ---------------------------------------------------------------------------------------------
# Licensees

LicFn = Callable[[Env, Mapping[str, int]], int]


class LicenseesCompiler:
    """Licensees to closures over the principal values of the current query."""

    def __init__(self, c: Compiler, canonical: Callable[[str], str]) -> None:
        self.c = c
        self.canonical = canonical
        self.static: list[str] = []  # canonical principals known at compile time
        self.dynamic: list[Fn] = []  # principal expressions that read attributes

    def compile(self, node: Expr) -> LicFn:
        """A Licensees expression as one call on the principal values: the min (`&&`), max
        (`||`) or K-th highest (K-of) of its principals, constant principals resolved now."""
        if node.kind == "str":
            fn, v = self.c._expr(node)
            canon = self.canonical
            if v is not _NC:
                key = canon(v)
                self.static.append(key)
                return lambda e, pcv: pcv.get(key, 0)
            self.dynamic.append(fn)
            return lambda e, pcv: pcv.get(canon(fn(e)), 0)
        if isinstance(node, Logic):
            keys = [self._static_key(i) for i in node.items]
            if all(k is not None for k in keys):
                return _static_logic(node.op, [k for k in keys if k is not None])
            fns = [self.compile(i) for i in node.items]
            if node.op == "&&":
                def all_of(e: Env, pcv: Mapping[str, int]) -> int:
                    best = e.maxi
                    for f in fns:
                        v = f(e, pcv)
                        if v < best:
                            best = v
                            if v == 0:
                                break
                    return best
                return all_of

            def any_of(e: Env, pcv: Mapping[str, int]) -> int:
                best = 0
                for f in fns:
                    v = f(e, pcv)
                    if v > best:
                        best = v
                        if v == e.maxi:
                            break
                return best
            return any_of
        if isinstance(node, KOf):
            fns = [self.compile(i) for i in node.items]
            k = node.k

            def k_of(e: Env, pcv: Mapping[str, int]) -> int:
                vals = sorted((f(e, pcv) for f in fns), reverse=True)
                return vals[k - 1]
            return k_of
        raise TypeError(f"not a Licensees expression: {type(node).__name__}")

    def _static_key(self, node: Expr) -> str | None:
        """The canonical principal of a constant principal expression (recorded), else None."""
        if node.kind != "str":
            return None
        _, v = self.c._expr(node)
        if v is _NC:
            return None
        key = self.canonical(v)
        self.static.append(key)
        return key


def _static_logic(op: str, keys: list[str]) -> LicFn:
    """`&&` (min) / `||` (max) over principals all known at compile time: the common case."""
    if len(keys) == 2:
        k1, k2 = keys
        if op == "&&":
            def min2(e: Env, pcv: Mapping[str, int]) -> int:
                a = pcv.get(k1, 0)
                b = pcv.get(k2, 0)
                return a if a < b else b
            return min2

        def max2(e: Env, pcv: Mapping[str, int]) -> int:
            a = pcv.get(k1, 0)
            b = pcv.get(k2, 0)
            return a if a > b else b
        return max2
    pick = min if op == "&&" else max
    return lambda e, pcv: pick([pcv.get(k, 0) for k in keys])


@dataclass(frozen=True, slots=True)
class Compiled:
    """Everything a query needs from one assertion, computed once at add time."""

    assertion: Assertion
    authorizer: Fn  # evaluates to the authorizer string
    authorizer_const: str | None  # the canonical authorizer when it reads no attributes
    conditions: tuple[CClause, ...] | None  # None: field absent (_MAX_TRUST)
    run: ProgramFn | None  # conditions as one callable (same result as run_program)
    licensees: LicFn | None  # None: field absent (_MAX_TRUST)
    licensees_empty: bool  # present but empty (_MIN_TRUST)
    static_licensees: tuple[str, ...]
    dynamic_licensees: tuple[Fn, ...]


def compile_assertion(a: Assertion, canonical: Callable[[str], str],
                      attrs: Attributes | None = None) -> Compiled:
    """Compile one parsed assertion (for the session owning `attrs`, if given)."""
    c = Compiler(a.local_constants, attrs)
    auth_fn, auth_v = c._expr(a.authorizer)
    auth_const = canonical(auth_v) if auth_v is not _NC else None
    lic: LicFn | None = None
    empty = False
    lc = LicenseesCompiler(c, canonical)
    if isinstance(a.licensees, Empty):
        empty = True
    elif a.licensees is not None:
        lic = lc.compile(a.licensees)
    conditions = compile_program(a.conditions, c) if a.conditions is not None else None
    run = program_fn(conditions) if conditions is not None else None
    return Compiled(a, auth_fn, auth_const, conditions, run, lic, empty,
                    tuple(dict.fromkeys(lc.static)), tuple(lc.dynamic))
