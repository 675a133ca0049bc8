"""String escapes, environment files and key files, as libkeynote reads them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keynote import keys
from keynote.envfile import EnvFileError, parse_env_file, read_key_file, scan_string, unescape

TESTSUITE = Path("/work/shared/vectors/keynote/testsuite")


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (r"plain", "plain"),
        (r"a\nb\rc\td\fe", "a\nb\rc\td\fe"),
        ("test\\\n\t     in\\g", "testing"),  # backslash-newline eats the following white space
        ("a\\\n\n\n  b", "ab"),
        (r"\0", "0"),
        (r"\00", "00"),
        (r"\000", "000"),
        (r"\012", "\n"),
        (r"\01", "\x01"),
        (r"\0777", "?7"),
        (r"\08", "08"),
        (r"\101", "A"),
        (r"\12", "12"),
        (r"\400", "400"),
        (r"\501", "A"),  # truncated to 8 bits
        (r"\a\\\"", 'a\\"'),
        ("trailing\\", "trailing\\"),
    ],
)
def test_unescape(body: str, value: str) -> None:
    assert unescape(body) == value


def test_rfc_equivalent_strings() -> None:
    """RFC 2704 4.3.1's examples (test-assertion1 compares them) decode to one string."""
    text = (TESTSUITE / "test-assertion1").read_text()
    start = text.index('"this string')
    values = []
    pos = start
    for _ in range(4):
        pos = text.index('"', pos)
        value, pos = scan_string(text, pos)
        values.append(value)
    assert values == ["this string contains a newline\n followed by one space."] * 4


def test_scan_string_errors() -> None:
    with pytest.raises(ValueError, match="newline"):
        scan_string('"abc\ndef"', 0)
    with pytest.raises(ValueError, match="unterminated"):
        scan_string('"abc', 0)
    assert scan_string('"a\\"b" rest', 0) == ('a"b', 6)


def test_testsuite_environment() -> None:
    env = dict(parse_env_file((TESTSUITE / "test-env").read_text(), "test-env"))
    assert env["app_domain"] == "testing"
    assert env["qua"] == "weirduse"
    assert len(env) == 8


def test_environment_order_and_names() -> None:
    text = '# c\n 1abc="x" a_b = "y"\n\n a_b="z"# end'
    assert parse_env_file(text) == [("1abc", "x"), ("a_b", "y"), ("a_b", "z")]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("", "1:1", "no assignments"),
        ("# only a comment\n", "2:1", "no assignments"),
        ('_x = "y"', "1:1", "attribute name"),
        ('a = "y"\nb "z"', "2:3", "expected '='"),
        ("a = y", "1:5", "quoted string"),
        ('a = "y\nz"', "1:5", "newline inside"),
        ('a = "yz', "1:5", "unterminated"),
        ('a = "y" =', "1:9", "attribute name"),
        ("a =", "1:4", "quoted string"),
    ],
)
def test_environment_errors(text: str, where: str, message: str) -> None:
    with pytest.raises(EnvFileError) as info:
        parse_env_file(text, "env")
    assert str(info.value).startswith(f"env:{where}: ")
    assert message in info.value.message


def test_key_files() -> None:
    assert read_key_file((TESTSUITE / "auth1").read_text()) == "KeyC"
    dsa = read_key_file((TESTSUITE / "auth4").read_text())
    assert isinstance(keys.decode_key(dsa), keys.DSAPublicKey)


def test_testsuite_local_constant_key_decodes() -> None:
    """test-assertion1's TWOKEY licensee is a DSA key spread over continuation lines."""
    text = (TESTSUITE / "test-assertion1").read_text()
    match = re.search(r'TWOKEY = (")', text)
    assert match is not None
    value, _ = scan_string(text, match.start(1))
    assert isinstance(keys.decode_key(value), keys.DSAPublicKey)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no quoted key"),
        ("# x\n", "no quoted key"),
        ('"a" "b"', "after the key"),
        ("a", "quoted"),
    ],
)
def test_key_file_errors(text: str, message: str) -> None:
    with pytest.raises(EnvFileError, match=message):
        read_key_file(text, "k")


@given(st.text(max_size=300))
def test_any_text_gives_assignments_or_env_error(text: str) -> None:
    try:
        result = parse_env_file(text)
    except EnvFileError as exc:
        assert exc.line >= 1 and exc.column >= 1
    else:
        assert result and all(isinstance(v, str) for _, v in result)


@given(st.text(alphabet='\\0123456789abnrtf"\n ', max_size=60))
def test_unescape_never_fails(body: str) -> None:
    assert isinstance(unescape(body), str)
