"""Fuzzing isakmpd.conf: any text is a Conf or a ConfError naming file and line, the values
answer get_num/get_list/match_num without raising, and a file group or others may read (or a
stranger owns) is refused with its path in the message."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from ike.conf import Conf, ConfError, Transaction
from ike.conf.parse import LONG_MAX, LONG_MIN

SETTINGS = settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SOURCE = "fuzz.conf"

_pieces = st.sampled_from(
    ["[", "]", "=", "#", ";", "\\", "\r", " ", "\t", "[General]", "[Phase 2]", "Tag", "Value",
     "Retransmits=5", "Connections=a,b,", "\\\n", "[]", "\0", "\ufeff", "3600,60:86400"]
)  # fmt: skip
_lines = st.lists(st.one_of(_pieces, st.text(max_size=15)), max_size=5).map("".join)
conf_texts = st.one_of(
    st.text(max_size=400),
    st.lists(_lines, max_size=12).map(lambda lines: "\n".join(lines) + "\n"),
    st.lists(_lines, min_size=1, max_size=12).map("\n".join),
)


@SETTINGS
@given(conf_texts)
@example("[S]\nA=1\n[Broken\n")
@example("[S]\nT=" + "9" * 5000 + "\n")  # found: get_num ran int() on 5000 digits (ValueError)
def test_any_text_is_a_conf_or_an_error_naming_file_and_line(text: str) -> None:
    """Parsing never raises anything but ConfError ``fuzz.conf:N: message`` with N a line of the
    text; what parses answers every lookup of every tag it holds."""
    lines = text.count("\n") + 1
    try:
        conf = Conf.from_text(text, source=SOURCE)
    except ConfError as exc:
        event("ConfError")
        assert exc.source == SOURCE and exc.line is not None and 1 <= exc.line <= lines
        assert str(exc).startswith(f"{SOURCE}:{exc.line}: ") and exc.message
        return
    event("Conf")
    assert all(w.startswith(f"{SOURCE}:") for w in conf.warnings)
    for section in conf.sections():
        for tag in conf.get_tag_list(section):
            assert conf.get_str(section, tag) is not None
            assert LONG_MIN <= conf.get_num(section, tag, 0) <= LONG_MAX
            assert isinstance(conf.get_list(section, tag), list)
            assert isinstance(conf.match_num(section, tag, 3600), bool)


@SETTINGS
@given(
    st.sampled_from(["[peer]\n", "", "[peer\n", "[]\n"]),
    st.sampled_from(["Authentication", "XAUTH-Password", "authentication", "  Authentication"]),
    st.sampled_from(["=", " ", "\t", " = ", "\\\n"]),
    st.text("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=8, max_size=20),
)
@example("[peer]\n", "Authentication", " ", "mekmitasdigoat")  # found: quoted in the error
def test_errors_never_quote_a_secret(before: str, tag: str, sep: str, secret: str) -> None:
    """A broken line holding a pre-shared key or XAUTH password (no '=', no section yet, an
    indented tag) is refused with a message that names file and line but not the secret."""
    text = f"{before}{tag}{sep}{secret}\n"
    try:
        Conf.from_text(text, source=SOURCE)
    except ConfError as exc:
        assert secret not in str(exc)
        event("ConfError")
    else:
        event("Conf")


_name = st.text(
    st.characters(blacklist_characters="]\n\r", blacklist_categories=("Cs",)), min_size=1,
    max_size=12,
)  # fmt: skip
_tag = st.text(
    st.characters(blacklist_characters=" \t=\n\r#;[\\", blacklist_categories=("Cs",)),
    min_size=1, max_size=12,
)  # fmt: skip
_value = st.text(
    st.characters(blacklist_characters="\n\r\\", blacklist_categories=("Cs",)), max_size=20
)


@SETTINGS
@given(st.lists(st.tuples(_name, st.lists(st.tuples(_tag, _value), max_size=4)), max_size=5))
def test_well_formed_files_read_back(sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
    """Every binding written reads back (first definition wins, names are case-insensitive,
    values trimmed); only duplicates are warned about."""
    text = "".join(
        f"[{name}]\n" + "".join(f"{tag}={value}\n" for tag, value in tags)
        for name, tags in sections
    )
    conf = Conf.from_text(text, source=SOURCE)
    first: dict[tuple[str, str], str] = {}
    written = 0
    for name, tags in sections:
        for tag, value in tags:
            written += 1
            first.setdefault((name.lower(), tag.lower()), value.lstrip(" \t").rstrip())
    for (name, tag), value in first.items():
        assert conf.get_str(name, tag) == value
        assert tag in [t.lower() for t in conf.get_tag_list(name)]
    assert len(conf.warnings) == written - len(first)


_values = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(["a", " b ", "", ",", " ", "\t", "-", "+1", "9" * 30]),
             max_size=8).map(",".join),
)  # fmt: skip


def _set(value: str) -> Conf:
    """A Conf with ``[S]:T`` set as the FIFO ``C set`` does (no restriction on the value)."""
    conf = Conf.from_text("")
    with conf.transaction() as tr:
        tr.set("S", "T", value)
    assert conf.get_str("S", "T") == value
    return conf


@SETTINGS
@given(_values, st.integers(-(2**70), 2**70))
@example("9" * 5000, 0)  # found: int() refused 5000 digits (ValueError) in get_num/match_num
@example("1,-" + "9" * 5000 + ":" + "9" * 5000, 7)
def test_value_lookups_never_raise(value: str, x: int) -> None:
    """Any value answers the numeric and list lookups: a C long, a bool, trimmed elements."""
    conf = _set(value)
    assert LONG_MIN <= conf.get_num("S", "T", -7) <= LONG_MAX
    items = conf.get_list("S", "T")
    assert all(item and item == item.strip() and "," not in item for item in items)
    assert len(items) <= value.count(",") + 1
    assert isinstance(conf.match_num("S", "T", x), bool)
    assert conf.get_num("S", "absent", -7) == -7


def _c_long(text: str) -> int:
    """What C's strtol makes of a decimal: out-of-range values stick at LONG_MIN/LONG_MAX."""
    negative = text.startswith("-")
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 30:  # far beyond a long: don't ask int() for thousands of digits
        return LONG_MIN if negative else LONG_MAX
    return max(LONG_MIN, min(LONG_MAX, -int(digits) if negative else int(digits)))


_numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["9" * 5000, "-" + "9" * 5000, "+" + "0" * 5000 + "7", "-0", "+12"]),
)


@SETTINGS
@given(_numbers, _numbers, _numbers, st.integers(-(2**70), 2**70), st.booleans())
@example("9" * 5000, "0", "9" * 5000, 5, True)  # found: as above, in a lifetime range
@example("+" + "0" * 5000 + "7", "0", "9", 7, False)  # found: leading zeros counted as digits
def test_numbers_and_ranges(a: str, low: str, high: str, x: int, offer: bool) -> None:
    """``A`` matches A only and ``A,LOW:HIGH`` the range, with numbers saturated as strtol
    does (and get_num is A), however many digits are written."""
    conf = _set(f"{a},{low}:{high}" if offer else a)
    assert conf.get_num("S", "T", 0) == _c_long(a)
    expected = _c_long(low) <= x <= _c_long(high) if offer else x == _c_long(a)
    assert conf.match_num("S", "T", x) == expected


@settings(SETTINGS, max_examples=60)
@given(
    st.one_of(st.integers(0, 0o777), st.sampled_from([0o600, 0o400, 0o700, 0o200, 0])),
    st.sampled_from([0, os.getuid(), 12345]),
    st.one_of(st.binary(max_size=200), conf_texts.map(lambda t: t.encode("utf-8", "replace"))),
)
def test_load_refuses_files_others_may_read(
    tmp_path: Path, mode: int, owner: int, data: bytes
) -> None:
    """Conf.load reads only a file owned by root or us with no group/other bits; anything else,
    and any bytes (invalid UTF-8 too), is a Conf or a ConfError that names the file."""
    path = tmp_path / "isakmpd.conf"
    path.write_bytes(data)
    os.chmod(path, mode)
    if os.geteuid() == 0:
        os.chown(path, owner, -1)
    else:
        owner = os.getuid()
    try:
        conf = Conf.load(str(path))
    except ConfError as exc:
        assert str(exc).startswith(f"{path}:")
        secret = not mode & 0o077 and owner in (0, os.getuid())
        readable = mode & 0o400 or os.geteuid() == 0
        if secret and readable:
            assert exc.line is not None  # refused for its text, not its permissions
        event(f"ConfError line={exc.line is not None}")
    else:
        assert not mode & 0o077 and owner in (0, os.getuid())
        assert conf.source == str(path)
        event("Conf")


_tx_sections = st.sampled_from(["S", "s", "General", "Phase 2", "3DES-SHA"])
_tx_tags = st.sampled_from(["T", "t", "Retransmits", "Connections", "ENCRYPTION_ALGORITHM"])
_tx_values = st.sampled_from(["a", "b", "c", "1", "a,b", "", " a"])
_tx_ops = st.one_of(
    st.tuples(st.just("set"), _tx_sections, _tx_tags, _tx_values, st.booleans()),
    st.tuples(st.just("add"), _tx_sections, _tx_tags, _tx_values),
    st.tuples(st.just("rmv"), _tx_sections, _tx_tags, _tx_values),
    st.tuples(st.just("rm"), _tx_sections, _tx_tags),
    st.tuples(st.just("rms"), _tx_sections),
)
BASE = "[S]\nT=a,b\n[General]\nRetransmits=5\n[Phase 2]\nConnections=a\n"


def _apply(tr: Transaction, op: tuple[Any, ...]) -> None:
    """One FIFO ``C`` operation queued on a transaction."""
    kind, *args = op
    if kind == "set":
        tr.set(args[0], args[1], args[2], override=args[3])
    elif kind == "add":
        tr.add(args[0], args[1], args[2])
    elif kind == "rmv":
        tr.remove_value(args[0], args[1], args[2])
    elif kind == "rm":
        tr.remove(args[0], args[1])
    else:
        tr.remove_section(args[0])


def _state(conf: Conf) -> list[object]:
    """Everything a reader can see of the configuration."""
    seen: list[object] = [conf.sections()]
    for section in ("S", "General", "Phase 2", "3DES-SHA"):
        seen.append(conf.get_tag_list(section))
        seen += [conf.get_str(section, tag) for tag in ("T", "Retransmits", "Connections",
                                                         "ENCRYPTION_ALGORITHM")]
    return seen


@SETTINGS
@given(st.lists(_tx_ops, max_size=8))
def test_one_transaction_is_its_operations_one_by_one(ops: list[tuple[Any, ...]]) -> None:
    """Queued FIFO changes committed together leave the configuration as committing them one
    at a time does (each sees the effect of the ones before it), and list operations keep
    their promise: after add the value is in the list, after rmv it is not."""
    together, one_by_one = Conf.from_text(BASE), Conf.from_text(BASE)
    with together.transaction() as tr:
        for op in ops:
            _apply(tr, op)
    for op in ops:
        with one_by_one.transaction() as tr:
            _apply(tr, op)
        if op[0] in ("add", "rmv") and op[3] and "," not in op[3] and op[3] == op[3].strip():
            assert (op[3] in one_by_one.get_list(op[1], op[2])) == (op[0] == "add")
    assert _state(together) == _state(one_by_one)
