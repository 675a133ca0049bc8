"""Differential property tests: random expressions, printed with as few parentheses as the
precedence table (reference/keynote.md 1.10) allows, must evaluate as a small model of C `int`
arithmetic and of Boolean logic does."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from keynote import Session

Tree = Any  # an int/bool leaf or a tuple (operator, operands...) built by hypothesis
LEVEL = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2, "^": 3}


class Fault(Exception):
    pass


def wrap(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def model(t: Tree) -> int:
    if isinstance(t, int):
        return t
    if t[0] == "neg":
        return wrap(-model(t[1]))
    op, a, b = t[0], model(t[1]), model(t[2])
    if op == "+":
        return wrap(a + b)
    if op == "-":
        return wrap(a - b)
    if op == "*":
        return wrap(a * b)
    if op in "/%":
        if b == 0:
            raise Fault
        q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
        return wrap(q) if op == "/" else wrap(a - b * q)
    r = 1
    if b < 0:
        return 0
    for _ in range(b):
        r = wrap(r * a)
    return r


def level(t: Tree) -> int:
    if isinstance(t, int):
        return 5
    return 4 if t[0] == "neg" else LEVEL[t[0]]


def render(t: Tree) -> str:
    if isinstance(t, int):
        return str(t)
    if t[0] == "neg":
        inner = render(t[1])
        return "-" + (inner if level(t[1]) >= 4 else f"({inner})")
    op, a, b = t
    left, right = render(a), render(b)
    if level(a) < LEVEL[op]:
        left = f"({left})"
    if level(b) <= LEVEL[op]:
        right = f"({right})"
    return f"{left} {op} {right}"


ints = st.recursive(
    st.integers(0, 12) | st.sampled_from([2147483647, 65536, 100000]),
    lambda kids: st.tuples(st.sampled_from(["+", "-", "*", "/", "%"]), kids, kids)
    | st.tuples(st.just("^"), kids, st.integers(0, 5))
    | st.tuples(st.just("neg"), kids),
    max_leaves=12,
)


def holds(test: str) -> str:
    s = Session()
    s.add_authorizer("a")
    s.add_assertions(f'Authorizer: "POLICY"\nLicensees: "a"\nConditions: {test} -> "yes";\n',
                     trusted=True)
    return s.query(["no", "yes"]).value


@settings(max_examples=300, deadline=None)
@given(ints)
def test_integer_expressions_match_the_c_model(t: Tree) -> None:
    text = render(t)
    try:
        expected = model(t)
    except Fault:
        assert holds(f"{text} == 0 || {text} != 0") == "no"  # runtime error: test is false
        return
    assert holds(f"{text} == {expected if expected >= 0 else f'-{-expected}'}") == "yes", text


bools = st.recursive(
    st.booleans(),
    lambda kids: st.tuples(st.sampled_from(["&&", "||"]), kids, kids)
    | st.tuples(st.just("!"), kids),
    max_leaves=10,
)
BLEVEL = {"||": 1, "&&": 2}


def bmodel(t: Tree) -> bool:
    if isinstance(t, bool):
        return t
    if t[0] == "!":
        return not bmodel(t[1])
    return (bmodel(t[1]) and bmodel(t[2])) if t[0] == "&&" else (bmodel(t[1]) or bmodel(t[2]))


def blevel(t: Tree) -> int:
    if isinstance(t, bool):
        return 4
    return 3 if t[0] == "!" else BLEVEL[t[0]]


def brender(t: Tree) -> str:
    if isinstance(t, bool):
        return "true" if t else "false"
    if t[0] == "!":
        inner = brender(t[1])
        return "!" + (inner if blevel(t[1]) >= 3 else f"({inner})")
    op, a, b = t
    left, right = brender(a), brender(b)
    if blevel(a) < BLEVEL[op]:
        left = f"({left})"
    if blevel(b) <= BLEVEL[op]:
        right = f"({right})"
    return f"{left} {op} {right}"


@settings(max_examples=200, deadline=None)
@given(bools)
def test_boolean_expressions_match_the_model(t: Tree) -> None:
    assert holds(brender(t)) == ("yes" if bmodel(t) else "no"), brender(t)
