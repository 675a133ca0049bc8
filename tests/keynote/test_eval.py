"""Conditions semantics: operators, conversions, regexes, special attributes, runtime errors."""

from __future__ import annotations

import pytest

from keynote import Session

VALUES = ("false", "maybe", "true")


def run(conditions: str, **attrs: str) -> str:
    s = Session()
    s.add_authorizer("A")
    s.add_assertions(f'Authorizer: "POLICY"\nLicensees: "A"\nConditions: {conditions}\n',
                     trusted=True, source="t")
    for k, v in attrs.items():
        s.set_attribute(k, v)
    return s.query(VALUES).value


def holds(expr: str, **attrs: str) -> bool:
    return run(f'{expr} -> "true";', **attrs) == "true"


# ---- integers: 32-bit C arithmetic (reference/keynote.md 1.11)

@pytest.mark.parametrize("expr", [
    "1 + 2 * 3 == 7",
    "2147483647 + 1 < 0",
    "-2147483647 - 2 == 2147483647",
    "65536 * 65536 == 0",
    "(0-7) / 2 == -3",
    "(0-7) % 2 == -1",
    "7 % (0-2) == 1",
    "2 ^ 3 ^ 2 == 64",
    "-2 ^ 2 == 4",
    "2 ^ (0-1) == 0",
    "0 ^ 0 == 1",
    "2 ^ 31 == -2147483648",
    "2 ^ 32 == 0",
    "-1 * 12 == -12",
    "12 * 1 - 1 != 0",
    "10 - 2 - 3 == 5",
    "1 <= 1 && 1 >= 1 && 1 < 2 && 2 > 1 && 1 != 2",
])
def test_integer_arithmetic(expr: str) -> None:
    assert holds(expr)


@pytest.mark.parametrize("expr", [
    "1.5 + 1.5 > 2.9", "1.5 * 2.0 < 3.1", "7.0 / 2.0 > 3.4", "2.0 ^ 10.0 > 1023.5",
    "-1.5 < 0.0", "&\"2.5\" > 2.4", "&\"-3\" < 0.1 && &\"-3\" > -0.1", "10.0 - 2.5 - 2.5 <= 5.0",
])
def test_float_arithmetic(expr: str) -> None:
    assert holds(expr)


@pytest.mark.parametrize(("s", "n"), [
    ("2.7", 2), ("-3", 0), ("12abc", 0), ("1e5", 0), ("1.2.3", 0), (".5", 0), ("5.", 5),
    ("", 0), ("42", 42), ("4294967296", -2147483648),
])
def test_at_conversion(s: str, n: int) -> None:
    assert holds(f"@v == {n}" if n >= 0 else f"@v == 0 - {-n}", v=s)


def test_string_comparisons_are_bytewise_and_case_sensitive() -> None:
    assert holds('"B" < "a" && "10" < "9" && "abc" == "abc" && "a" != "A" && "b" >= "a"')


def test_concatenation_and_deref() -> None:
    attrs = {"foo": "bar", "bar": "xyz", "xyz": "qua", "foobar": "fb"}
    assert holds('$foo == "xyz" && $$foo == "qua" && $foo . bar == "xyzxyz"', **attrs)
    assert holds('$(foo . bar) == "" && $("foo") == "bar" && $ "fo" . "o" == "o"', **attrs)
    assert holds('$("foo" . "bar") == "fb" && @(foo . bar) == 0', **attrs)


def test_undefined_attributes_read_as_empty_string() -> None:
    assert holds('nothing == "" && $nothing == "" && @nothing == 0')


# ---- regular expressions and _0.._N (reference/keynote.md 1.13)

def test_regex_match_sets_group_count_and_groups() -> None:
    assert holds('x ~= "^(a+)-(b+)(x)?$" && _0 == "3" && _1 == "aa" && _2 == "b" && _3 == ""',
                 x="aa-b")


def test_regex_is_unanchored_extended_and_case_sensitive() -> None:
    assert holds('x ~= "b+|z" && !(x ~= "B") && x ~= "[[:digit:]]{2}"', x="abbb12")


def test_backslash_in_pattern_is_first_a_string_escape() -> None:
    assert holds('x ~= "^x\\\\.y$" && !(z ~= "^x\\\\.y$")', x="x.y", z="xzy")


def test_posix_bracket_expression_backslash_is_literal() -> None:
    assert holds('x ~= "^[\\\\]$"', x="\\")


def test_posix_dollar_does_not_match_before_a_trailing_newline() -> None:
    assert not holds('x ~= "a$"', x="a\n")


def test_each_match_clears_previous_groups() -> None:
    assert holds('x ~= "(a)" && !(x ~= "(z)") && _1 == ""', x="a")


def test_groups_are_cleared_between_clauses() -> None:
    assert run('x ~= "(a)" -> "maybe"; _1 == "a" -> "true";', x="a") == "maybe"


def test_groups_visible_in_every_nested_clause() -> None:
    # Difference from the reference (reference/keynote.md 1.13 and 2.6 item 3): libkeynote
    # clears the parent's groups after the first nested clause; RFC 2704 5.3.4 keeps them valid
    # within the whole clause, nested block included.
    assert run('x ~= "(a)" -> { _1 == "zz" -> "maybe"; _1 == "a" -> "true"; };', x="a") == "true"


def test_invalid_regex_is_a_runtime_error_making_the_test_false() -> None:
    assert run('x ~= "(" -> "true"; true -> "maybe";', x="(") == "maybe"
    assert run('!(x ~= "a**[") -> "true";', x="a") == "false"


# ---- runtime errors (RFC 2704 5.3.4)

@pytest.mark.parametrize("test", ["1/0 == 0", "5 % 0 == 0", "1.0/0.0 < 1.0", "!(1/0 == 0)"])
def test_runtime_error_makes_the_test_false_and_evaluation_goes_on(test: str) -> None:
    assert run(f'{test} -> "true"; true -> "maybe";') == "maybe"


def test_short_circuit_follows_the_rfc() -> None:
    # Difference from the reference (reference/keynote.md 1.14 and 2.6 item 2): libkeynote's
    # keynote_donteval flag is reset by the inner &&, so it evaluates 1/0 and answers false.
    assert holds("true || ((true && true) && 1/0 == 1)")
    assert holds("true || 1/0 == 1")
    assert not holds("false && 1/0 == 1")


# ---- special attributes and values

def test_special_attributes() -> None:
    s = Session()
    s.add_authorizer("first")
    s.add_authorizer("A")
    s.add_assertions('Authorizer: "POLICY"\nLicensees: "A"\nConditions: '
                     '_MIN_TRUST == "no" && _MAX_TRUST == "yes" && _VALUES == "no,mid,yes" && '
                     '_ACTION_AUTHORIZERS == "A,first" -> "yes";\n', trusted=True)
    assert s.query(["no", "mid", "yes"]).value == "yes"


def test_values_outside_the_set_count_as_min_trust() -> None:
    assert run('true -> "perhaps";') == "false"
    assert run('true -> "ma" . "ybe";') == "maybe"
    assert run("true -> v;", v="maybe") == "maybe"
    assert run("true -> _MAX_TRUST;") == "true"


def test_clause_values_combine_by_max_and_bare_clause_is_max_trust() -> None:
    assert run('true -> "maybe"; true -> "false";') == "maybe"
    assert run('false -> "true"; true;') == "true"


def test_nested_blocks() -> None:
    assert run('true -> { false -> "true"; true -> "maybe"; };') == "maybe"
    assert run('false -> { true -> "true"; };') == "false"
    assert run("true -> { };") == "false"


def test_empty_and_missing_conditions() -> None:
    s = Session()
    s.add_authorizer("A")
    s.add_assertions('Authorizer: "POLICY"\nLicensees: "A"\nConditions:\n', trusted=True)
    assert s.query(VALUES).value == "false"
    s = Session()
    s.add_authorizer("A")
    s.add_assertions('Authorizer: "POLICY"\nLicensees: "A"\n', trusted=True)
    assert s.query(VALUES).value == "true"


def test_true_and_false_as_attribute_names() -> None:
    # RFC 2704 4.6.5: "true" and "false" are not reserved (the reference reserves them).
    assert holds('true == "yes" && true', **{"true": "yes"})


def test_local_constants_override_attributes_and_reach_every_field() -> None:
    s = Session()
    s.add_authorizer("k")
    s.add_assertions('Authorizer: "POLICY"\nLicensees: WHO\nLocal-Constants: WHO = "k" '
                     'X = "const"\nConditions: X == "const" && who == "attr";\n', trusted=True)
    s.set_attribute("X", "attr")
    s.set_attribute("who", "attr")
    assert s.query(["false", "true"]).value == "true"
