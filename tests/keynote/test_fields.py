"""Field splitting (RFC 2704 section 4.1): names, continuations, comments, blank lines, offsets."""

from __future__ import annotations

import pytest

from keynote.errors import KeyNoteSyntaxError
from keynote.fields import MAX_FIELD_CHARS, LineMap, split_assertions


def names(text: str) -> list[list[str]]:
    return [[f.name for f in a.fields] for a in split_assertions(text, "t")]


def test_field_names_are_case_insensitive_and_canonicalised() -> None:
    text = 'KEYNOTE-VERSION: 2\nauthorizer: "a"\nLiCeNsEeS: "b"\nconditions: true;\n'
    assert names(text) == [["KeyNote-Version", "Authorizer", "Licensees", "Conditions"]]


def test_continuation_lines_and_hash_lines_belong_to_the_field() -> None:
    text = 'Authorizer: "a"\nConditions: x == "1"\n\t&& y == "2"\n# a comment line\n  -> "t";\n'
    (a,) = split_assertions(text, "t")
    cond = a.field("Conditions")
    assert cond is not None
    assert a.value(cond) == ' x == "1"\n\t&& y == "2"\n# a comment line\n  -> "t";'
    assert cond.line == 2


def test_blank_line_ends_an_assertion_and_several_assertions_split() -> None:
    text = 'Authorizer: "a"\nLicensees: "b"\n\nAuthorizer: "c"\n\n\n\nAuthorizer: "d"'
    assert names(text) == [["Authorizer", "Licensees"], ["Authorizer"], ["Authorizer"]]
    assert [a.line for a in split_assertions(text, "t")] == [1, 4, 8]


def test_whitespace_only_line_continues_the_assertion() -> None:
    text = 'Authorizer: "a"\n   \nLicensees: "b"\n'
    assert names(text) == [["Authorizer", "Licensees"]]


def test_leading_comment_lines_are_part_of_the_signed_region() -> None:
    text = '\n\n# signed comment\nAuthorizer: "a"\nSignature: "sig"\n'
    (a,) = split_assertions(text, "t")
    assert a.raw.startswith("# signed comment\n")
    sig = a.field("Signature")
    assert sig is not None
    assert a.text[a.start : sig.start].endswith('"a"\n')


def test_offsets_and_padded_values_keep_columns() -> None:
    text = 'Authorizer: "a"\nConditions: x;\n'
    (a,) = split_assertions(text, "t")
    cond = a.field("Conditions")
    assert cond is not None
    padded = a.padded_value(cond)
    assert padded.index("x") == len("Conditions: ")
    assert LineMap(text).position(text.index("x;")) == (2, 13)


def test_comment_field_is_free_text() -> None:
    text = 'Comment: anything ( " goes\nAuthorizer: "a"\n'
    assert names(text) == [["Comment", "Authorizer"]]


@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ('Authorizer: "a"\nBogus: 1\n', "unknown field name", 2, 1),
        ('Authorizer: "a"\nAuthorizer: "b"\n', "duplicate field", 2, 1),
        ('Authorizer: "a"\nKeyNote-Version: 2\n', "must be the first field", 2, 1),
        ('# c\nKeyNote-Version: 2\nAuthorizer: "a"\n', "must be the first field", 2, 1),
        ('Licensees: "a"\n', "missing Authorizer", 1, 1),
        ('   Authorizer: "a"\n', "beginning of a line", 1, 4),
        ('Authorizer: "a"\nSignature: "s"\nLicensees: "b"\n', "must be the last field", 3, 1),
        ('Authorizer "a"\n', "expected a field name", 1, 1),
        ('Authorizer : "a"\n', "unknown field name", 1, 1),
    ],
)
def test_structural_errors_name_line_and_column(text: str, message: str, line: int,
                                                column: int) -> None:
    with pytest.raises(KeyNoteSyntaxError) as info:
        split_assertions(text, "policy")
    e = info.value
    assert message in e.message
    assert (e.source, e.line, e.column) == ("policy", line, column)
    assert str(e).startswith(f"policy:{line}:{column}: ")


def test_rfc_field_names_only_no_prefix_matching() -> None:
    # Difference from the reference (reference/keynote.md 1.1 and 2.6 item 5): libkeynote
    # accepts any prefix ("Auth:", "Lic:", "C:"); RFC 2704 names the fields exactly.
    with pytest.raises(KeyNoteSyntaxError, match="unknown field name"):
        split_assertions('Auth: "a"\n', "t")


def test_oversized_field_is_refused_before_parsing() -> None:
    text = 'Authorizer: "a"\nComment: ' + "x" * (MAX_FIELD_CHARS + 1) + "\n"
    with pytest.raises(KeyNoteSyntaxError, match="longer than"):
        split_assertions(text, "t")


def test_comment_only_blocks_are_not_assertions() -> None:
    text = '# isakmpd.policy\n#   header\n\n  # indented\n\nAuthorizer: "a"\n\n# trailer\n'
    assert names(text) == [["Authorizer"]]
    assert split_assertions(text, "t")[0].line == 6
