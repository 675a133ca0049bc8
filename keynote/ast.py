"""Frozen AST of KeyNote assertions, with source positions.

Expression nodes carry their static type (`kind`: "int", "float", "str", "bool", or "lic" for a
Licensees combination) and nesting depth, both computed once by the parser's type-check pass.
`&&`, `||` and `.` chains are kept flat (n-ary) so long policies do not nest deeply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

from keynote.fields import RawAssertion


@dataclass(frozen=True, slots=True)
class Pos:
    """Where a node starts in its source text (1-based line and column, 0-based offset)."""

    line: int
    column: int
    offset: int


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal, already unescaped."""

    value: str
    pos: Pos
    kind: str = "str"
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Int:
    """An integer literal (C int, so already wrapped to 32 bits)."""

    value: int
    pos: Pos
    kind: str = "int"
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Float:
    """A floating-point literal (C double)."""

    value: float
    pos: Pos
    kind: str = "float"
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Bool:
    """`true` or `false` in a test position."""

    value: bool
    pos: Pos
    kind: str = "bool"
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Name:
    """An attribute or local-constant reference; its value is a string ("" when undefined)."""

    name: str
    pos: Pos
    kind: str = "str"
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Unary:
    """`-x`, `@x`, `&x`, `$x` or `!x`."""

    op: str
    operand: Expr
    pos: Pos
    kind: str
    depth: int


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic and relational operators (`+ - * / % ^ == != < > <= >= ~=`)."""

    op: str
    left: Expr
    right: Expr
    pos: Pos
    kind: str
    depth: int


@dataclass(frozen=True, slots=True)
class Logic:
    """A flat `&&` or `||` chain: tests in Conditions, principals in Licensees."""

    op: str
    items: tuple[Expr, ...]
    pos: Pos
    kind: str
    depth: int


@dataclass(frozen=True, slots=True)
class Concat:
    """A flat `.` (string concatenation) chain."""

    items: tuple[Expr, ...]
    pos: Pos
    kind: str = "str"
    depth: int = 1


@dataclass(frozen=True, slots=True)
class KOf:
    """`K-of(p1, p2, ...)` in Licensees: the K-th highest value of the principals."""

    k: int
    items: tuple[Expr, ...]
    pos: Pos
    kind: str = "lic"
    depth: int = 1


Expr = Union[Str, Int, Float, Bool, Name, Unary, Binary, Logic, Concat, KOf]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class Clause:
    """`test;`, `test -> value;` or `test -> { clauses };` with its source span."""

    test: Expr
    value: Expr | None
    block: tuple[Clause, ...] | None
    pos: Pos
    end: int  # offset just past the closing ';'


@dataclass(frozen=True, slots=True)
class Assertion:
    """A parsed assertion. A missing Licensees/Conditions field is None (value _MAX_TRUST);
    a present but empty one is EMPTY (value _MIN_TRUST)."""

    raw: RawAssertion
    version: str | None
    local_constants: Mapping[str, str]
    authorizer: Expr
    licensees: Expr | Empty | None
    conditions: tuple[Clause, ...] | None
    signature: Expr | None


class Empty:
    """Marker for a field that is present but holds nothing."""

    _instance: Empty | None = None

    def __new__(cls) -> Empty:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY = Empty()
