"""Property tests: whatever text reaches the parser or a query ends in an answer or a
KeyNoteError, never another exception (RecursionError, IndexError, lark errors...)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keynote import KeyNoteError, Session
from keynote.parse import check_text, parse_text

TOKENS = [
    "(", ")", "{", "}", ";", "->", "&&", "||", "!", "==", "!=", "<", ">", "<=", ">=", "~=",
    "+", "-", "*", "/", "%", "^", ".", "@", "&", "$", "true", "false", "x", "y", "_0", "_1",
    "_MAX_TRUST", "_VALUES", '"a"', '"(a+)"', '"["', '"1.5"', '"\\101"', "0", "1", "7", "1.5",
    "2147483647", "#c\n", "\n ", "2-of", ",", "1" + "0" * 5000, "_" + "9" * 5000,
    '"' + "9" * 5000 + '"', "9" * 5000 + "-of",
]
FIELDS = ["Authorizer", "Licensees", "Conditions", "Local-Constants", "KeyNote-Version",
          "Signature", "Comment", "Bogus", "authorizer", "CONDITIONS"]

settings.register_profile("kc", deadline=None, max_examples=300,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kc")


def answer_or_keynote_error(text: str) -> None:
    try:
        errors = check_text(text, "fuzz")
    except KeyNoteError:
        raise AssertionError("check_text must return errors, not raise") from None
    try:
        parse_text(text, "fuzz")
    except KeyNoteError:
        assert errors
        return
    assert not errors
    s = Session()
    s.add_authorizer("x")
    s.set_attribute("x", "a")
    s.set_attribute("y", "1.5")
    try:
        s.add_assertions(text, trusted=True, source="fuzz")
    except KeyNoteError:
        raise AssertionError("parse_text accepted what add_assertions refused") from None
    for explain in (False, True):
        r = s.query(["no", "maybe", "yes"], explain=explain)
        assert r.value in ("no", "maybe", "yes")
        if r.trace is not None:
            str(r.trace)


@given(st.text(max_size=300))
def test_any_text(text: str) -> None:
    answer_or_keynote_error(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_in_conditions(tokens: list[str]) -> None:
    answer_or_keynote_error('Authorizer: "POLICY"\nLicensees: "x"\nConditions: '
                            + " ".join(tokens) + "\n")


@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_token_soup_in_licensees(tokens: list[str]) -> None:
    answer_or_keynote_error('Authorizer: "POLICY"\nLicensees: ' + " ".join(tokens) + "\n")


@given(st.lists(st.tuples(st.sampled_from(FIELDS), st.lists(st.sampled_from(TOKENS),
                                                            max_size=8)), max_size=6),
       st.sampled_from(["\n", "\n\n", "\r\n", "\n \n"]))
def test_field_soup(fields: list[tuple[str, list[str]]], sep: str) -> None:
    answer_or_keynote_error(sep.join(f"{name}: {' '.join(toks)}" for name, toks in fields))


@given(st.lists(st.sampled_from(['"a"', '"(a|b)*c"', '"[[:alpha:]]+"', '"a{2,3}"', '"\\\\"',
                                 '"(("', '"a**"', '"[]a]"', '"x$"', '"^"', '"(?i)a"',
                                 '"\\\\1"', '"[b-a]"', '"a{3,1}"']), min_size=1, max_size=3),
       st.text(max_size=20))
def test_regex_patterns_never_crash(patterns: list[str], subject: str) -> None:
    s = Session()
    s.add_authorizer("x")
    s.set_attribute("s", subject)
    s.add_assertions('Authorizer: "POLICY"\nLicensees: "x"\nConditions: '
                     + " ".join(f"s ~= {p} -> \"yes\";" for p in patterns) + "\n", trusted=True)
    assert s.query(["no", "yes"]).value in ("no", "yes")
