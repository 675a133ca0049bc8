"""POSIX ERE to Python translation (keynote.regex): the cases where the two syntaxes differ."""

from __future__ import annotations

import pytest

from keynote.regex import compile_ere, translate


@pytest.mark.parametrize(("pattern", "subject", "matches"), [
    ("a|b", "b", True),
    ("^ab$", "ab", True),
    ("^ab$", "ab\n", False),  # POSIX $ is the end of the string only
    ("a.c", "a\nc", True),  # . matches a newline without REG_NEWLINE
    ("[[:digit:]]+", "x42", True),
    ("[[:alpha:][:digit:]]", "-", False),
    ("[^[:space:]]", " \t", False),
    ("[]a]", "]", True),
    ("[^]a]", "]", False),
    ("[a-c]", "b", True),
    ("[\\]", "\\", True),  # backslash is literal in a bracket expression
    ("[.]", "x", False),
    ("a{2,3}", "aa", True),
    ("a{2}", "a", False),
    ("a{", "a{", True),  # not an interval: literal brace
    ("x*?y", "y", True),  # POSIX: (x*)? ; not a lazy star
    ("(a)(b)?", "a", True),
    ("\\(", "(", True),
    ("\\<ab\\>", "x ab y", True),
    ("\\<ab\\>", "xab", False),
    ("(?i)a", "?i)a", False),
])
def test_translation(pattern: str, subject: str, matches: bool) -> None:
    try:
        rx = compile_ere(pattern)
    except ValueError:
        assert not matches
        return
    assert (rx.search(subject) is not None) is matches


@pytest.mark.parametrize("pattern", ["(", ")", "a**b(", "[a", "[[:nope:]]", "*a", "a|*",
                                     "\\", "[b-a]", "a{3,1}", "(?i)a", "a{99999999}"])
def test_invalid_patterns_raise_value_error(pattern: str) -> None:
    with pytest.raises(ValueError):
        compile_ere(pattern)


def test_group_count_ignores_translation_helpers() -> None:
    assert compile_ere("(a)**(b)").groups == 2
    assert "(?:" in translate("(a)**")


def test_python_only_syntax_is_escaped() -> None:
    rx = compile_ere("a&&b~~c")
    assert rx.search("a&&b~~c")


def test_a_cached_invalid_pattern_raises_a_fresh_error_each_time() -> None:
    # One cached exception object re-raised would grow its traceback (and the frames it
    # keeps alive) on every query that evaluates the bad regex.
    errors = []
    for _ in range(3):
        with pytest.raises(ValueError, match="invalid regular expression") as info:
            compile_ere("(unclosed")
        errors.append(info.value)
    assert errors[0] is not errors[1] is not errors[2]
    assert str(errors[0]) == str(errors[2])
