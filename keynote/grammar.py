"""The Lark side of the KeyNote parser: the field grammars and the inline transformer.

Imported only when some text really needs parsing (keynote.parse does it lazily), so a process
whose assertions all come from the AST cache never loads Lark. The parser builds the frozen AST
(keynote.ast) directly while it reduces, type-checking each node as it is made, so no tree is
walked recursively and a pathological input cannot exhaust the Python stack.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from lark import Lark, Transformer, v_args
from lark import __version__ as lark_version
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedToken,
    VisitError,
)

from keynote.ast import (
    EMPTY,
    Binary,
    Bool,
    Clause,
    Concat,
    Empty,
    Expr,
    Float,
    Int,
    KOf,
    Logic,
    Name,
    Pos,
    Str,
    Unary,
)
from keynote.errors import KeyNoteError, KeyNoteSyntaxError
from keynote.fields import Field, RawAssertion
from keynote.parse import MAX_DEPTH, cache_file, unescape

GRAMMAR = Path(__file__).with_name("keynote.lark")
_STARTS = ["version", "local_constants", "authorizer", "licensees", "conditions", "signature"]
_START_OF = {
    "KeyNote-Version": "version",
    "Local-Constants": "local_constants",
    "Authorizer": "authorizer",
    "Licensees": "licensees",
    "Conditions": "conditions",
    "Signature": "signature",
}
_TOKEN_NAMES = {
    "KOF": "K-of", "FLOAT": "a float", "INT": "an integer", "NAME": "a name",
    "STRING": "a string", "OROR": "'||'", "ANDAND": "'&&'", "EQ": "'=='", "NE": "'!='",
    "LE": "'<='", "GE": "'>='", "LT": "'<'", "GT": "'>'", "MATCH": "'~='", "ARROW": "'->'",
    "PLUS": "'+'", "MINUS": "'-'", "DOT": "'.'", "STAR": "'*'", "SLASH": "'/'",
    "PERCENT": "'%'", "CARET": "'^'", "AT": "'@'", "AMP": "'&'", "DOLLAR": "'$'",
    "BANG": "'!'", "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'",
    "SEMI": "';'", "COMMA": "','", "EQUAL": "'='", "$END": "end of field",
}



# ---------------------------------------------------------------------------------------------
# The inline transformer: AST nodes and type checks, built during LALR reductions.

_ARITH = {"+", "-", "*", "/", "^"}
_ORDER = {"<", ">", "<=", ">="}


@v_args(inline=True)
class _Build(Transformer[Any, Any]):
    """Callbacks for Lark rules; `line0`/`base` map field positions to the source text."""

    def __init__(self) -> None:
        super().__init__()
        self.line0 = 0
        self.base = 0
        self.source = "<string>"
        self.field = ""

    # -- helpers
    def pos(self, tok: Any) -> Pos:
        return Pos(tok.line + self.line0, tok.column, tok.start_pos + self.base)

    def error(self, message: str, pos: Pos, text: str = "") -> KeyNoteSyntaxError:
        return KeyNoteSyntaxError(message, source=self.source, line=pos.line, column=pos.column,
                                  field=self.field, text=text)

    def deeper(self, pos: Pos, *children: Expr) -> int:
        depth = 1 + max(c.depth for c in children)
        if depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep", pos)
        return depth

    def as_bool(self, node: Expr, what: str) -> Expr:
        if node.kind == "bool":
            return node
        if isinstance(node, Name) and node.name.lower() in ("true", "false"):
            return Bool(node.name.lower() == "true", node.pos)
        raise self.error(f"{what} must be a test (a comparison, true or false), not {node.kind}",
                         node.pos)

    # -- leaves
    def string(self, tok: Any) -> Expr:
        return Str(unescape(str(tok)), self.pos(tok))

    def name(self, tok: Any) -> Expr:
        return Name(str(tok), self.pos(tok))

    def int_lit(self, tok: Any) -> Expr:
        digits = str(tok).lstrip("0") or "0"
        # atoi: strtol saturates at LONG_MAX, then the int conversion truncates to 32 bits
        v = min(int(digits), (1 << 63) - 1) if len(digits) <= 19 else (1 << 63) - 1
        return Int(((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31), self.pos(tok))

    def float_lit(self, tok: Any) -> Expr:
        return Float(float(str(tok)), self.pos(tok))

    def paren(self, _lpar: Any, node: Expr) -> Expr:
        return node

    # -- operators
    def unop(self, tok: Any, operand: Expr) -> Expr:
        op = str(tok)
        pos = self.pos(tok)
        depth = self.deeper(pos, operand)
        k = operand.kind
        if op == "!":
            return Unary(op, self.as_bool(operand, "the operand of '!'"), pos, "bool", depth)
        if op == "-":
            if k not in ("int", "float"):
                raise self.error(f"unary '-' needs a number, not {k}", pos, op)
            return Unary(op, operand, pos, k, depth)
        if k != "str":
            raise self.error(f"'{op}' needs a string operand, not {k}", pos, op)
        kind = {"@": "int", "&": "float", "$": "str"}[op]
        return Unary(op, operand, pos, kind, depth)

    def binop(self, left: Expr, tok: Any, right: Expr) -> Expr:
        op = str(tok)
        pos = self.pos(tok)
        lk, rk = left.kind, right.kind
        depth = self.deeper(pos, left, right)
        if lk != rk:
            raise self.error(f"'{op}' between {lk} and {rk}: KeyNote never mixes types (use @ "
                             "or & to convert attributes)", pos, op)
        if op in ("==", "!="):
            if lk not in ("int", "str"):
                raise self.error(f"'{op}' compares integers or strings, not {lk}", pos, op)
            return Binary(op, left, right, left.pos, "bool", depth)
        if op in _ORDER:
            if lk not in ("int", "float", "str"):
                raise self.error(f"'{op}' compares numbers or strings, not {lk}", pos, op)
            return Binary(op, left, right, left.pos, "bool", depth)
        if op == "~=":
            if lk != "str":
                raise self.error(f"'~=' matches a string against a regular expression, not {lk}",
                                 pos, op)
            return Binary(op, left, right, left.pos, "bool", depth)
        if op == "%":
            if lk != "int":
                raise self.error(f"'%' needs integers, not {lk}", pos, op)
            return Binary(op, left, right, left.pos, "int", depth)
        if op in _ARITH and lk in ("int", "float"):
            return Binary(op, left, right, left.pos, lk, depth)
        raise self.error(f"'{op}' needs numbers, not {lk}", pos, op)

    def chain_depth(self, pos: Pos, items: tuple[Expr, ...]) -> int:
        depth = 1 + max(i.depth for i in items)
        if depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep", pos)
        return depth

    def _logic_chain(self, children: tuple[Any, ...]) -> Expr:
        op = str(children[1])
        items = tuple(self.as_bool(c, f"an operand of '{op}'") for c in children[0::2])
        return Logic(op, items, items[0].pos, "bool", self.chain_depth(items[0].pos, items))

    def or_e(self, *children: Any) -> Expr:
        return self._logic_chain(children)

    def and_e(self, *children: Any) -> Expr:
        return self._logic_chain(children)

    def _lic_chain(self, children: tuple[Any, ...]) -> Expr:
        op = str(children[1])
        items = children[0::2]
        for side in items:
            if side.kind not in ("str", "lic"):
                raise self.error(f"'{op}' in Licensees combines principals, not {side.kind}",
                                 side.pos)
        return Logic(op, items, items[0].pos, "lic", self.chain_depth(items[0].pos, items))

    def l_or(self, *children: Any) -> Expr:
        return self._lic_chain(children)

    def l_and(self, *children: Any) -> Expr:
        return self._lic_chain(children)

    def _fold(self, children: tuple[Any, ...]) -> Expr:
        """Fold `x op y op z ...` left-associatively; runs of `.` become one flat Concat."""
        acc: Expr = children[0]
        run: list[Expr] | None = None
        for i in range(1, len(children), 2):
            tok, right = children[i], children[i + 1]
            if str(tok) == ".":
                if run is None:
                    run = [acc]
                for side in (run[-1], right):
                    if side.kind != "str":
                        raise self.error(f"'.' joins strings, not {side.kind} (write @(a . b) "
                                         "to convert a concatenation)", self.pos(tok), ".")
                run.append(right)
                continue
            if run is not None:
                acc = self._concat(run)
                run = None
            acc = self.binop(acc, tok, right)
        return self._concat(run) if run is not None else acc

    def _concat(self, run: list[Expr]) -> Expr:
        items = tuple(run)
        return Concat(items, items[0].pos, "str", self.chain_depth(items[0].pos, items))

    def sum_e(self, *children: Any) -> Expr:
        return self._fold(children)

    def prod_e(self, *children: Any) -> Expr:
        return self._fold(children)

    def pow_e(self, *children: Any) -> Expr:
        return self._fold(children)

    def l_cat(self, *children: Any) -> Expr:
        return self._fold(children)

    def a_cat(self, *children: Any) -> Expr:
        return self._fold(children)

    def kof(self, tok: Any, items: tuple[Expr, ...]) -> Expr:
        pos = self.pos(tok)
        digits = str(tok)[:-3]
        k = int(digits) if len(digits) <= 9 else 10**9
        if k > len(items):
            shown = str(k) if len(digits) <= 9 else "K"
            raise self.error(f"{shown}-of needs at least {shown} principals, got {len(items)}",
                             pos, str(tok))
        return KOf(k, items, pos, "lic", self.deeper(pos, *items))

    def l_list(self, *items: Expr) -> tuple[Expr, ...]:
        for it in items:
            if it.kind != "str":
                raise self.error("K-of lists principals (strings)", it.pos)
        return items

    # -- fields
    def version_int(self, tok: Any) -> tuple[str, Pos]:
        return str(tok), self.pos(tok)

    def version_str(self, tok: Any) -> tuple[str, Pos]:
        return unescape(str(tok)), self.pos(tok)

    def assignment(self, name: Any, value: Any) -> tuple[str, str, Pos]:
        return str(name), unescape(str(value)), self.pos(name)

    def local_constants(self, *items: tuple[str, str, Pos]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value, pos in items:
            if name.startswith("_"):
                raise self.error("local constant names may not start with '_'", pos, name)
            if name in out:
                raise self.error("local constant defined twice", pos, name)
            out[name] = value
        return out

    def _string_expr(self, node: Expr) -> Expr:
        if node.kind != "str":
            raise self.error(f"expected a string expression, not {node.kind}", node.pos)
        return node

    def authorizer(self, node: Expr) -> Expr:
        return self._string_expr(node)

    def signature(self, node: Expr) -> Expr:
        return self._string_expr(node)

    def licensees(self, node: Expr | None = None) -> Expr | Empty:
        return EMPTY if node is None else node

    def conditions(self, *clauses: Clause) -> tuple[Clause, ...]:
        return clauses

    def bare_clause(self, test: Expr, semi: Any) -> Clause:
        t = self.as_bool(test, "a clause")
        return Clause(t, None, None, t.pos, semi.end_pos + self.base)

    def value_clause(self, test: Expr, _arrow: Any, value: Expr, semi: Any) -> Clause:
        t = self.as_bool(test, "a clause")
        if value.kind != "str":
            raise self.error(f"the value after '->' must be a string, not {value.kind}",
                             value.pos)
        return Clause(t, value, None, t.pos, semi.end_pos + self.base)

    def block_clause(self, test: Expr, _arrow: Any, _lbrace: Any, *rest: Any) -> Clause:
        t = self.as_bool(test, "a clause")
        *block, semi = rest
        return Clause(t, None, tuple(block), t.pos, semi.end_pos + self.base)


# ---------------------------------------------------------------------------------------------
# The Lark parser, loaded once per process from a cache file.

_lock = threading.Lock()
_parser: Any = None


def _get_parser() -> Any:
    global _parser
    if _parser is None:
        grammar = GRAMMAR.read_text()
        cache = cache_file("grammar", grammar + lark_version, "lark-cache")
        # The basic lexer: one scanner for all fields. The contextual lexer gives the same tokens
        # for KeyNote (the only overlap, `2-of` in Conditions, is a type error either way) but
        # compiles a scanner per parser state at start-up, which `keynote verify` pays for.
        # Positions come from the tokens the callbacks see, so propagate_positions is not needed.
        _parser = Lark(
            grammar,
            parser="lalr",
            lexer="basic",
            start=_STARTS,
            transformer=_Build(),
            cache=cache or False,
            maybe_placeholders=False,
        )
    return _parser


# ---------------------------------------------------------------------------------------------
# Lark errors to KeyNoteSyntaxError

# Strings and comments are skipped; brackets and runs of prefix operators (`!!!x`, `$$$a`) are
# what nests. Counting them here refuses absurd input before Lark spends time on it.
_NEST_RE = re.compile(r'"(?:\\.|[^"\\])*"|#[^\n]*|[(){}]|(?:[!@&$-][ \t\n]*)+', re.S)
_NOT_OPERATOR = str.maketrans("", "", " \t\n")


def _check_nesting(text: str, build: _Build) -> None:
    depth = 0
    for m in _NEST_RE.finditer(text):
        c = m.group()
        if c in "({":
            depth += 1
            if depth > MAX_DEPTH:
                pos = Pos(build.line0 + text.count("\n", 0, m.start()) + 1,
                          m.start() - text.rfind("\n", 0, m.start()), build.base + m.start())
                raise build.error(f"nested more than {MAX_DEPTH} levels deep", pos, c)
        elif c in ")}":
            depth -= 1
        elif c[0] in "!@&$-" and len(c.translate(_NOT_OPERATOR)) > MAX_DEPTH:
            pos = Pos(build.line0 + text.count("\n", 0, m.start()) + 1,
                      m.start() - text.rfind("\n", 0, m.start()), build.base + m.start())
            raise build.error(f"more than {MAX_DEPTH} prefix operators in a row", pos, c[:20])


def _lark_error(e: Exception, text: str, build: _Build) -> KeyNoteSyntaxError:
    if isinstance(e, UnexpectedToken):
        tok = e.token
        expected = sorted(_TOKEN_NAMES.get(t, t) for t in e.expected if not t.startswith("_"))
        hint = f", expected {', '.join(expected[:8])}" if expected else ""
        if tok.type == "$END":
            line = text.count("\n") + 1
            col = len(text) - text.rfind("\n")
            return build.error(f"unexpected end of field{hint}",
                               Pos(line + build.line0, col, build.base + len(text)))
        return build.error(f"unexpected {_TOKEN_NAMES.get(tok.type, tok.type)}{hint}",
                           build.pos(tok), str(tok))
    if isinstance(e, UnexpectedCharacters):
        at = e.pos_in_stream or 0
        ch = text[at : at + 1]
        msg = "unexpected character"
        if ch == "\r":
            msg += " (carriage return: KeyNote text uses LF line ends)"
        elif ch == '"':
            msg = "unterminated string (a raw newline needs a backslash before it)"
        pos = Pos((e.line or 1) + build.line0, e.column or 1, build.base + at)
        return build.error(msg, pos, text[at : at + 20])
    if isinstance(e, UnexpectedEOF):
        return build.error("unexpected end of field", Pos(build.line0 + 1, 1, build.base))
    return build.error(f"parse error: {e}", Pos(build.line0 + 1, 1, build.base))


def parse_field(raw: RawAssertion, field: Field) -> Any:
    """Parse one field's value with its start symbol; raise KeyNoteSyntaxError."""
    text = raw.padded_value(field)
    with _lock:
        parser = _get_parser()
        build: _Build = parser.options.transformer
        build.line0 = field.line - 1
        build.base = field.start
        build.source = raw.source
        build.field = field.name
        _check_nesting(text, build)
        try:
            return parser.parse(text, start=_START_OF[field.name])
        except KeyNoteError:
            raise
        except VisitError as e:
            if isinstance(e.orig_exc, KeyNoteError):
                raise e.orig_exc from None
            raise build.error(f"internal parse error: {e.orig_exc}",
                              Pos(field.line, 1, field.start)) from None
        except LarkError as e:
            raise _lark_error(e, text, build) from None
        except RecursionError:
            raise build.error("expression too deeply nested",
                              Pos(field.line, 1, field.start)) from None
