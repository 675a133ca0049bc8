"""The reference testsuite (reference/keynote.md 6.1) through the Session API."""

from __future__ import annotations

from pathlib import Path

import pytest

from keynote import Session
from keynote.envfile import parse_env_file, read_key_file
from keynote.fields import chunks

SUITE = Path("/work/shared/vectors/keynote/testsuite")
if not SUITE.is_dir():
    SUITE = Path(__file__).resolve().parents[3] / "shared/vectors/keynote/testsuite"
VALUES = ["false", "maybe", "probably", "true"]
AUTH = ["auth1", "auth2", "auth3", "auth4"]


def first_assertion(path: Path) -> str:
    """`keynote verify` reads one assertion per file (test-assertion7 relies on this)."""
    text = path.read_text()
    c = next(chunks(text))
    return text[: c.end]


def suite(auth: list[str] = AUTH, assertions: range = range(1, 8),
          policy: str | None = None) -> Session:
    s = Session()
    for name, value in parse_env_file((SUITE / "test-env").read_text(), "test-env"):
        s.set_attribute(name, value)
    for a in auth:
        s.add_authorizer(read_key_file((SUITE / a).read_text(), a))
    if policy is not None:
        s.add_assertions(policy, trusted=True, source="sub-query")
    for i in assertions:
        path = SUITE / f"test-assertion{i}"
        s.add_assertions(first_assertion(path), trusted=True, source=path.name)
    return s


def test_environment_decodes_like_the_reference() -> None:
    env = dict(parse_env_file((SUITE / "test-env").read_text()))
    assert env["app_domain"] == "testing"


def test_testsuite_answers_true_without_failures() -> None:
    r = suite().query(VALUES)
    assert (r.value, r.failed) == ("true", [])


def test_testsuite_without_auth2_answers_false() -> None:
    assert suite(auth=["auth1", "auth3", "auth4"]).query(VALUES).value == "false"


@pytest.mark.parametrize(("key", "value"), [
    ("Key3", "true"), ("Key4", "false"), ("Key5", "false"), ("Key6", "true")])
def test_intermediate_principal_values(key: str, value: str) -> None:
    # The sub-queries of reference/keynote.md 6.1: a POLICY that licenses one key only.
    s = suite(assertions=range(3, 8), policy=f'Authorizer: "POLICY"\nLicensees: "{key}"\n')
    assert s.query(VALUES).value == value


@pytest.mark.parametrize(("only", "value"), [(7, "true"), (6, "false")])
def test_key6_through_one_assertion(only: int, value: str) -> None:
    s = suite(assertions=range(only, only + 1),
              policy='Authorizer: "POLICY"\nLicensees: "Key6"\n')
    assert s.query(VALUES).value == value


def test_trace_shows_the_intermediate_values() -> None:
    r = suite().query(VALUES, explain=True)
    assert r.trace is not None
    results = {a.where.split(":")[0]: VALUES[a.result] for a in r.trace.assertions.values()}
    assert results == {"test-assertion1": "true", "test-assertion2": "false",
                       "test-assertion3": "true", "test-assertion4": "false",
                       "test-assertion5": "false", "test-assertion6": "false",
                       "test-assertion7": "true"}
    assert "runtime error (integer division by zero)" in str(r.trace)
    assert r.trace.because() == [
        "assertion 0 (test-assertion1:1) by 'POLICY' = true",
        "assertion 2 (test-assertion3:1) by 'Key3' = true",
        "licenses action authorizer 'KeyE'",
    ]


def test_trailing_text_of_test_assertion7_is_a_second_assertion() -> None:
    text = (SUITE / "test-assertion7").read_text()
    assert len(list(chunks(text))) == 2
