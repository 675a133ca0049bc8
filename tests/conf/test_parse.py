"""The isakmpd.conf parser follows conf.c's rules (reference/isakmpd.md 3.1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ike.conf import Conf, ConfError


def test_sections_tags_and_case_rules() -> None:
    conf = Conf.from_text("[General]\nRetransmits=\t 5  \n[Peer]\nAddress=10.0.0.1\n")
    assert conf.get_str("general", "RETRANSMITS") == "5"
    assert conf.get_str("PEER", "address") == "10.0.0.1"
    assert conf.get_str("Peer", "Missing") is None
    assert conf.get_str("Peer", "Missing", "dflt") == "dflt"


def test_values_keep_case_and_inline_hash() -> None:
    conf = Conf.from_text("[S]\nName=Foo.Bar # not a comment\n")
    assert conf.get_str("s", "name") == "Foo.Bar # not a comment"


def test_comments_only_in_column_zero() -> None:
    conf = Conf.from_text("# c\n; c\n[S]\n#Tag=1\n;Tag=2\nTag=3\n\n   \n")
    assert conf.get_str("S", "Tag") == "3"


def test_tag_ends_at_blank_or_equals() -> None:
    conf = Conf.from_text("[S]\nTag with blanks=v\nOther\t=w\n")
    assert conf.get_str("S", "Tag") == "v"
    assert conf.get_str("S", "Other") == "w"


def test_section_name_up_to_first_bracket() -> None:
    conf = Conf.from_text("[Phase 2] trailing ignored ]\nConnections=a\n")
    assert conf.get_list("Phase 2", "Connections") == ["a"]


def test_continuation_joins_with_two_spaces() -> None:
    conf = Conf.from_text("[S]\nList=a,\\\nb\nNext=1\n")
    assert conf.get_str("S", "List") == "a,  b"
    assert conf.get_list("S", "List") == ["a", "b"]
    assert conf.get_str("S", "Next") == "1"


def test_unterminated_last_line_is_ignored_with_a_warning() -> None:
    conf = Conf.from_text("[S]\nA=1\nB=2", source="x.conf")
    assert conf.get_str("S", "A") == "1"
    assert conf.get_str("S", "B") is None
    assert conf.warnings == ["x.conf:3: last line unterminated, ignored"]


def test_first_definition_wins() -> None:
    conf = Conf.from_text("[S]\nA=1\n[s]\na=2\nB=3\n", source="f")
    assert conf.get_str("S", "A") == "1"
    assert conf.get_str("S", "B") == "3"
    assert conf.warnings == ["f:4: duplicate tag [s]:a, ignoring"]


def test_crlf_lines() -> None:
    conf = Conf.from_text("[S]\r\nA=1\r\n")
    assert conf.get_str("S", "A") == "1"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("[S]\nA=1\n[Broken\nB=2\n", 3, "non-matched"),
        ("[S]\njust words\n", 2, "syntax error"),
        ("A=1\n", 1, "outside any section"),
        ("[S]\n  Indented=1\n", 2, "empty tag"),
        ("[]\n", 1, "empty section"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfError) as info:
        Conf.from_text(text, source="bad.conf")
    assert str(info.value).startswith(f"bad.conf:{line}: ")
    assert words in str(info.value)
    assert info.value.line == line


def test_lists_trim_and_drop_empty_elements() -> None:
    conf = Conf.from_text("[Phase 2]\nConnections= a ,b,, c ,\n")
    assert conf.get_list("Phase 2", "Connections") == ["a", "b", "c"]
    assert conf.get_list("Phase 2", "Missing") == []


@pytest.mark.parametrize(
    ("value", "x", "expected"),
    [
        ("3600,60:86400", 60, True),
        ("3600,60:86400", 86400, True),
        ("3600,60:86400", 59, False),
        ("3600,60:86400", 86401, False),
        ("128", 128, True),
        ("128", 256, False),
        ("128,96", 128, False),
        ("junk", 0, False),
        (" 7 ", 7, True),
    ],
)
def test_match_num(value: str, x: int, expected: bool) -> None:
    conf = Conf.from_text(f"[S]\nV={value}\n")
    assert conf.match_num("S", "V", x) is expected


def test_match_num_missing_is_false() -> None:
    assert Conf.from_text("").match_num("S", "V", 1) is False


@pytest.mark.parametrize(
    ("value", "expected"), [("3600,60:86400", 3600), ("42abc", 42), ("x", 0), ("-3", -3)]
)
def test_get_num_is_atoi(value: str, expected: int) -> None:
    conf = Conf.from_text(f"[S]\nV={value}\n")
    assert conf.get_num("S", "V", 99) == expected
    assert conf.get_num("S", "Missing", 99) == 99


def test_tag_list_in_file_order() -> None:
    conf = Conf.from_text("[S]\nB=1\nA=2\nC=3\n")
    assert conf.get_tag_list("s") == ["B", "A", "C"]


def test_load_accepts_0600(tmp_path: Path) -> None:
    path = tmp_path / "isakmpd.conf"
    path.write_text("[General]\nRetransmits=7\n")
    path.chmod(0o600)
    conf = Conf.load(str(path))
    assert conf.get_num("General", "Retransmits", 0) == 7
    assert conf.source == str(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o610, 0o601])
def test_load_refuses_group_or_world_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "isakmpd.conf"
    path.write_text("[General]\n")
    path.chmod(mode)
    with pytest.raises(ConfError) as info:
        Conf.load(str(path))
    message = str(info.value)
    assert message.startswith(str(path))
    assert f"{mode:04o}" in message


def test_load_refuses_a_strangers_file(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to give the file another owner")
    path = tmp_path / "isakmpd.conf"
    path.write_text("[General]\n")
    path.chmod(0o600)
    os.chown(path, 12345, 12345)
    with pytest.raises(ConfError, match="owned by uid 12345"):
        Conf.load(str(path))


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfError, match="cannot open"):
        Conf.load(str(tmp_path / "nope.conf"))


def test_load_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "isakmpd.conf"
    path.write_text("[General]\nnonsense\n")
    path.chmod(0o600)
    with pytest.raises(ConfError, match=r"isakmpd\.conf:2: syntax error"):
        Conf.load(str(path))
