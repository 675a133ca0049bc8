"""Field grammars, the type-check pass, string escapes and syntax-error reporting."""

from __future__ import annotations

from pathlib import Path

import pytest

from keynote.ast import EMPTY, Binary, Bool, Concat, Int, KOf, Logic, Name, Str, Unary
from keynote.errors import KeyNoteSyntaxError
from keynote.parse import MAX_DEPTH, check_text, parse_text, unescape


def one(text: str):  # type: ignore[no-untyped-def]
    (a,) = parse_text(text, "t")
    return a


def cond(expr: str):  # type: ignore[no-untyped-def]
    """The test of a single bare clause."""
    a = one(f'Authorizer: "a"\nConditions: {expr};\n')
    (clause,) = a.conditions
    return clause.test


def syntax_error(text: str) -> KeyNoteSyntaxError:
    with pytest.raises(KeyNoteSyntaxError) as info:
        parse_text(text, "t")
    return info.value


def cond_error(expr: str) -> KeyNoteSyntaxError:
    return syntax_error(f'Authorizer: "a"\nConditions: {expr}\n')


# ---- KeyNote-Version, Local-Constants, Authorizer, Signature

@pytest.mark.parametrize("v", ["2", '"2"', "2 # comment"])
def test_version_two(v: str) -> None:
    assert one(f'KeyNote-Version: {v}\nAuthorizer: "a"\n').version == "2"


@pytest.mark.parametrize("v", ["3", '"02"', "2.0"])
def test_other_versions_rejected(v: str) -> None:
    syntax_error(f'KeyNote-Version: {v}\nAuthorizer: "a"\n')


def test_local_constants_any_order_and_multiline() -> None:
    a = one('Authorizer: K\nLocal-Constants: K = "x" # c\n\tL = "y\\n"\n')
    assert dict(a.local_constants) == {"K": "x", "L": "y\n"}


@pytest.mark.parametrize(("text", "message"), [
    ('Local-Constants: A = "x" A = "y"', "defined twice"),
    ('Local-Constants: _A = "x"', "may not start with '_'"),
    ('Local-Constants: A = B', "unexpected"),
    ('Local-Constants: A = "x" . "y"', "unexpected"),
])
def test_local_constant_errors(text: str, message: str) -> None:
    assert message in syntax_error(f'Authorizer: "a"\n{text}\n').message


def test_authorizer_forms() -> None:
    assert one('Authorizer: "POLICY"\n').authorizer == Str("POLICY", one(
        'Authorizer: "POLICY"\n').authorizer.pos)
    assert isinstance(one("Authorizer: who\n").authorizer, Name)
    assert isinstance(one('Authorizer: $"who"\n').authorizer, Unary)
    assert isinstance(one('Authorizer: "a" . b\n').authorizer, Concat)


def test_authorizer_has_no_parentheses() -> None:
    e = syntax_error('Authorizer: ("x")\n')
    assert (e.field, e.line, e.column, e.text) == ("Authorizer", 1, 13, "(")


def test_signature_is_a_string_expression() -> None:
    a = one('Authorizer: "a"\nSignature: "sig-rsa-sha1-hex:00"\n')
    assert isinstance(a.signature, Str)


# ---- Licensees

def test_licensees_missing_empty_and_present() -> None:
    assert one('Authorizer: "a"\n').licensees is None
    assert one('Authorizer: "a"\nLicensees:\n').licensees is EMPTY
    assert isinstance(one('Authorizer: "a"\nLicensees: "b"\n').licensees, Str)


def test_licensees_precedence_and_flattening() -> None:
    lic = one('Authorizer: "a"\nLicensees: "a" || "b" && "c" || "d"\n').licensees
    assert isinstance(lic, Logic) and lic.op == "||" and len(lic.items) == 3
    assert isinstance(lic.items[1], Logic) and lic.items[1].op == "&&"


def test_licensees_parentheses_kof_and_deref() -> None:
    lic = one('Authorizer: "a"\nLicensees: ("a" && (b)) || 2-OF("x", $y, "z" . w)\n').licensees
    assert isinstance(lic, Logic)
    kof = lic.items[1]
    assert isinstance(kof, KOf) and kof.k == 2 and len(kof.items) == 3
    assert isinstance(kof.items[1], Unary) and isinstance(kof.items[2], Concat)


@pytest.mark.parametrize(("lic", "message"), [
    ('3-of("a", "b")', "needs at least 3"),
    ('0-of("a")', "unexpected"),
    ('2 -of("a", "b")', "unexpected"),
    ('2-of("a" && "b", "c")', "unexpected"),
    ('"a" &&', "end of field"),
    ('$("a" || "b")', "needs a string"),
])
def test_licensees_errors(lic: str, message: str) -> None:
    e = syntax_error(f'Authorizer: "a"\nLicensees: {lic}\n')
    assert message in e.message and e.field == "Licensees"


# ---- Conditions: clauses

def test_clause_forms() -> None:
    a = one('Authorizer: "a"\nConditions: a == "1"; b == "2" -> "x"; c == "3" -> { true; };'
            ' true -> { };\n')
    c1, c2, c3, c4 = a.conditions
    assert c1.value is None and c1.block is None
    assert isinstance(c2.value, Str) and c2.block is None
    assert c3.block is not None and len(c3.block) == 1
    assert c4.block == ()


def test_conditions_missing_and_empty() -> None:
    assert one('Authorizer: "a"\n').conditions is None
    assert one('Authorizer: "a"\nConditions:\n').conditions == ()


@pytest.mark.parametrize("text", ["true", "true -> \"x\"", "true -> { true -> \"x\" };",
                                  "true -> { true -> \"x\"; }"])
def test_every_clause_needs_a_semicolon(text: str) -> None:
    assert "unexpected" in cond_error(text).message


@pytest.mark.parametrize("value", ['"ma" . "ybe"', "v", "_MAX_TRUST", "$v"])
def test_clause_values_are_string_expressions(value: str) -> None:
    a = one(f'Authorizer: "a"\nConditions: true -> {value};\n')
    assert a.conditions[0].value.kind == "str"


# ---- Conditions: precedence (reference/keynote.md 1.10)

def test_precedence_of_logic() -> None:
    t = cond("true || false && false")
    assert isinstance(t, Logic) and t.op == "||"
    t = cond("!true && false")
    assert isinstance(t, Logic) and t.op == "&&" and isinstance(t.items[0], Unary)
    t = cond('!x == "z"')
    assert isinstance(t, Unary) and isinstance(t.operand, Binary)


def test_precedence_of_arithmetic() -> None:
    t = cond("1 + 2 * 3 ^ 2 == 19")
    assert isinstance(t, Binary) and t.op == "=="
    add = t.left
    assert isinstance(add, Binary) and add.op == "+"
    mul = add.right
    assert isinstance(mul, Binary) and mul.op == "*"
    assert isinstance(mul.right, Binary) and mul.right.op == "^"


def test_power_is_left_associative_and_unary_minus_binds_tighter() -> None:
    t = cond("2 ^ 3 ^ 2 == 64").left
    assert t.op == "^" and isinstance(t.left, Binary) and t.left.op == "^"
    t = cond("-2 ^ 2 == 4").left
    assert t.op == "^" and isinstance(t.left, Unary)


def test_deref_binds_tighter_than_concat() -> None:
    t = cond("$foo . bar == x").left
    assert isinstance(t, Concat) and isinstance(t.items[0], Unary)


def test_relational_operators_do_not_chain() -> None:
    assert "unexpected" in cond_error("1 < 2 < 3;").message


def test_true_false_are_keywords_in_tests_case_insensitively() -> None:
    assert cond("TRUE") == Bool(True, cond("TRUE").pos)
    assert isinstance(cond("False && true"), Logic)


def test_true_false_are_attribute_names_where_a_string_is_needed() -> None:
    # Difference from the reference (reference/keynote.md 1.4, 2.6 item 4): libkeynote
    # reserves true/false in Conditions; RFC 2704 section 4.6.5 says they are not reserved.
    t = cond('true == "yes"')
    assert isinstance(t, Binary) and isinstance(t.left, Name)


@pytest.mark.parametrize(("expr", "message"), [
    ("1 + 1.5 < 3.0;", "between int and float"),
    ('x == 10;', "between str and int"),
    ("1.0 == 1.0;", "compares integers or strings"),
    ("1.5 % 2.0 < 1.0;", "'%' needs integers"),
    ("@a . b == 0;", "'.' joins strings"),
    ('"a" + "b" == "ab";', "needs numbers"),
    ("x;", "must be a test"),
    ("true -> 1;", "must be a string"),
    ("!x;", "the operand of '!'"),
    ("-x == 1;", "needs a number"),
    ("@1 == 1;", "needs a string operand"),
    ("1 && true;", "an operand of '&&'"),
    ('"a" ~= 1;', "between str and int"),
    ("1. == 1;", "unexpected"),
    (".5 < 1.0;", "unexpected"),
])
def test_type_errors_match_the_reference(expr: str, message: str) -> None:
    e = cond_error(expr)
    assert message in e.message, e
    assert e.field == "Conditions" and e.source == "t"


def test_huge_numbers_are_no_crash() -> None:
    # Python refuses int() of more than 4300 digits; KeyNote saturates like strtol.
    big = "1" + "0" * 5000
    t = cond(f"{big} == 1")
    assert isinstance(t, Binary) and t.left == Int(-1, t.left.pos)
    e = syntax_error(f'Authorizer: "a"\nLicensees: {big}-of("a")\n')
    assert "K-of needs at least K principals" in e.message


def test_integer_literals_wrap_like_atoi() -> None:
    assert cond("2147483648 == 0").left == Int(-2147483648, cond("2147483648 == 0").left.pos)


# ---- strings

@pytest.mark.parametrize(("literal", "value"), [
    (r'"plain"', "plain"),
    (r'"a\nb\tc\rd\fe"', "a\nb\tc\rd\fe"),
    (r'"\a\\\""', 'a\\"'),
    (r'"\101\012"', "A\n"),
    (r'"\0"', "0"), (r'"\00"', "00"), (r'"\000"', "000"), (r'"\08"', "08"),
    (r'"\012"', "\n"), (r'"\12"', "12"), (r'"\400"', "400"), (r'"\01"', "\x01"),
    ('"a\\\n   \t b"', "ab"),
])
def test_string_escapes(literal: str, value: str) -> None:
    assert unescape(literal) == value


def test_raw_newline_in_string_is_an_error() -> None:
    e = syntax_error('Authorizer: "a\n b"\n')
    assert "string" in e.message


def test_rfc_example_strings_are_equal() -> None:
    a = one('Authorizer: "a"\nLocal-Constants: A = "this string contains a newline\\n\\\n'
            ' \\ followed by one space."\n B = "this string contains a newline\\012\\040'
            'followed by one space."\n')
    assert a.local_constants["A"] == a.local_constants["B"]


# ---- error reporting

def test_error_names_source_field_line_column_and_text() -> None:
    e = syntax_error('Authorizer: "a"\nConditions: a == "b" &&\n    c === "d";\n')
    assert (e.source, e.field, e.line, e.column, e.text) == ("t", "Conditions", 3, 9, "=")
    assert str(e).startswith("t:3:9: Conditions: unexpected")


def test_carriage_return_is_explained() -> None:
    e = syntax_error('Authorizer: "a"\r\n')
    assert "carriage return" in e.message


def test_check_text_returns_every_error() -> None:
    text = ('Authorizer: ("x")\nLicensees: 3-of("a")\nConditions: 1 + 1.5 < 3.0;\n\n'
            'Authorizer: "ok"\n\nBogus: 1\n')
    errors = check_text(text, "f")
    assert [(e.field, e.line) for e in errors] == [
        ("Authorizer", 1), ("Licensees", 2), ("Conditions", 3), ("", 7)]
    assert check_text('Authorizer: "ok"\nConditions: true;\n', "f") == []
    assert check_text('# header only\n\nAuthorizer: "ok"\n', "f") == []


# ---- pathological input

@pytest.mark.timeout(20)
def test_deep_parentheses_end_in_a_syntax_error() -> None:
    n = 100_000
    e = cond_error("(" * n + "true" + ")" * n + ";")
    assert "nested more than" in e.message


@pytest.mark.timeout(20)
def test_deep_unary_chains_end_in_a_syntax_error() -> None:
    e = cond_error("!" * 100_000 + "true;")
    assert "prefix operators in a row" in e.message and e.column == 13
    e = syntax_error('Authorizer: "a"\nLicensees: ' + "$ " * 100_000 + '"x"\n')
    assert "prefix operators in a row" in e.message
    e = cond_error("!!(" * 110 + "true" + ")" * 110 + ";")
    assert "nested more than" in e.message


def test_prefix_operators_inside_strings_do_not_count() -> None:
    assert cond('x == "' + "!" * 1000 + '"')


@pytest.mark.timeout(60)
def test_long_chains_parse_in_linear_time() -> None:
    n = 10_000
    a = one('Authorizer: "a"\nConditions: ' + '"a" . ' * n + '"a" == x && '
            + " && ".join(["true"] * n) + ";\n")
    test = a.conditions[0].test
    assert isinstance(test, Logic) and len(test.items) == n + 1
    assert isinstance(test.items[0], Binary) and isinstance(test.items[0].left, Concat)
    assert len(test.items[0].left.items) == n + 1


def test_long_flat_chains_are_fine() -> None:
    n = 5000
    t = cond(" || ".join(f'x == "{i}"' for i in range(n)))
    assert isinstance(t, Logic) and len(t.items) == n
    assert n > MAX_DEPTH


@pytest.mark.timeout(20)
def test_ten_megabyte_field_ends_in_a_syntax_error() -> None:
    e = syntax_error('Authorizer: "a"\nConditions: x == "' + "y" * 10_000_000 + '";\n')
    assert "longer than" in e.message


# ---- the grammar cache (a pickle: only from a directory nobody else can write)

def test_cache_directory_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keynote.parse import _cache_path

    shared = tmp_path / "xdg" / "keynote-py"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    path = _cache_path("grammar")
    assert path.startswith(str(tmp_path / "tmp")) and not path.startswith(str(shared))
    shared.chmod(0o700)
    assert _cache_path("grammar").startswith(str(shared))
