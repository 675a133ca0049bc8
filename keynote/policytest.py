"""Policy unit tests: TOML files that pin what a KeyNote policy accepts and rejects.

A test file names policy files (every assertion in them is trusted, as isakmpd
loads `isakmpd.policy`), optional signed credentials, and cases.  Each case
gives the action attributes, the action authorizers and the expected answer;
`keynote test FILE...` runs them from the shell and `load_cases()` /
`Case.run()` run them from pytest.  The format is described in docs/keynote.md::

    policies = ["isakmpd.policy"]          # relative to this file
    credentials = []                       # untrusted, signature-checked
    values = ["false", "true"]             # lowest first; isakmpd's pair by default

    [attributes]                           # shared by every case
    app_domain = "IPsec policy"

    [[case]]
    name = "3DES with the shared secret"
    passphrase = "mekmitasdigoat"          # the three principals isakmpd derives
    authorizers = []                       # any other principals
    attributes = { esp_present = "yes", esp_enc_alg = "3des" }
    expect = "true"
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from keynote.errors import KeyNoteError

if TYPE_CHECKING:
    from keynote import Session

__all__ = [
    "Case",
    "Outcome",
    "PolicyTestError",
    "load_cases",
    "passphrase_principals",
    "run_files",
]

_DEFAULT_VALUES = ("false", "true")
_FILE_KEYS = {"policies", "credentials", "values", "attributes", "case"}
_CASE_KEYS = {"name", "attributes", "authorizers", "passphrase", "values", "expect"}


class PolicyTestError(KeyNoteError):
    """A test file that cannot be run: bad TOML, unknown keys, missing or broken policy files."""


def passphrase_principals(secret: str) -> list[str]:
    """The principals isakmpd adds for a pre-shared key (`check_policy()` in ike_quick_mode.c)."""
    data = secret.encode("utf-8", "surrogateescape")
    return [
        "passphrase:" + secret,
        "passphrase-md5-hex:" + hashlib.md5(data).hexdigest(),
        "passphrase-sha1-hex:" + hashlib.sha1(data).hexdigest(),
    ]


@dataclass(frozen=True)
class Case:
    """One query against a set of policy files, with the answer it must give."""

    file: Path
    name: str
    policies: tuple[Path, ...]
    credentials: tuple[Path, ...]
    values: tuple[str, ...]
    attributes: tuple[tuple[str, str], ...]
    authorizers: tuple[str, ...]
    expect: str

    @property
    def id(self) -> str:
        """A readable test id: `file.toml::case name`."""
        return f"{self.file.name}::{self.name}"

    def session(self) -> Session:
        """A session holding this case's policies (trusted) and credentials (untrusted)."""
        from keynote import Session

        session = Session()
        for path, trusted in [(p, True) for p in self.policies] + [
            (c, False) for c in self.credentials
        ]:
            try:
                text = path.read_text(encoding="utf-8", errors="surrogateescape")
            except OSError as exc:
                raise PolicyTestError(f"{self.file}: cannot read {path}: {exc.strerror}") from None
            try:
                session.add_assertions(text, trusted=trusted, source=str(path))
            except KeyNoteError as exc:
                raise PolicyTestError(f"{self.file}: {exc}") from None
        return session

    def run(self, session: Session | None = None) -> Outcome:
        """Query (reusing `session` if given: its attributes and authorizers are replaced)."""
        if session is None:
            session = self.session()
        session.clear_attributes()
        session.clear_authorizers()
        for name, value in self.attributes:
            session.set_attribute(name, value)
        for principal in self.authorizers:
            session.add_authorizer(principal)
        result = session.query(list(self.values))
        if result.value == self.expect:
            return Outcome(self, result.value, True)
        explained = session.query(list(self.values), explain=True)  # say why, for the admin
        detail = f"expected {self.expect!r}, got {result.value!r}"
        return Outcome(self, result.value, False, detail, str(explained.trace or ""))


@dataclass(frozen=True)
class Outcome:
    """The answer a case got."""

    case: Case
    value: str
    passed: bool
    detail: str = field(default="")
    trace: str = field(default="")  # how the answer was reached, for a failed case


def _strings(value: Any, what: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyTestError(f"{where}: {what} must be a list of strings")
    return list(value)


def _attributes(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise PolicyTestError(f'{where}: attributes must be a table of name = "value"')
    out: dict[str, str] = {}
    for name, v in value.items():
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise PolicyTestError(f"{where}: attribute {name!r} must be a string (or integer)")
        out[name] = str(v)
    return out


def load_cases(path: str | Path) -> list[Case]:
    """Read one TOML test file into cases; raise PolicyTestError if it is malformed."""
    import tomllib  # here, not at the top: ike.policy imports this module for its principals

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyTestError(f"{path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyTestError(f"{path}: {exc}") from None
    where = str(path)
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise PolicyTestError(f"{where}: unknown keys {sorted(unknown)}")
    base = path.parent
    policies = tuple(base / p for p in _strings(data.get("policies"), "policies", where))
    if not policies:
        raise PolicyTestError(f"{where}: policies must name at least one policy file")
    credentials = tuple(
        base / p for p in _strings(data.get("credentials", []), "credentials", where)
    )
    values = _strings(data.get("values", list(_DEFAULT_VALUES)), "values", where)
    shared = _attributes(data.get("attributes", {}), where)
    raw_cases = data.get("case")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise PolicyTestError(f"{where}: no [[case]] tables")
    cases: list[Case] = []
    for number, raw in enumerate(raw_cases, 1):
        if not isinstance(raw, Mapping):
            raise PolicyTestError(f"{where}: case {number} is not a table")
        name = raw.get("name", f"case {number}")
        here = f"{where}: case {name!r}"
        if not isinstance(name, str):
            raise PolicyTestError(f"{where}: case {number}: name must be a string")
        unknown = set(raw) - _CASE_KEYS
        if unknown:
            raise PolicyTestError(f"{here}: unknown keys {sorted(unknown)}")
        case_values = _strings(raw.get("values", values), "values", here)
        expect = raw.get("expect")
        if not isinstance(expect, str) or expect not in case_values:
            raise PolicyTestError(f"{here}: expect must be one of {case_values}")
        attributes = dict(shared)
        attributes.update(_attributes(raw.get("attributes", {}), here))
        authorizers: list[str] = []
        secret = raw.get("passphrase")
        if secret is not None:
            if not isinstance(secret, str):
                raise PolicyTestError(f"{here}: passphrase must be a string")
            authorizers += passphrase_principals(secret)
        authorizers += _strings(raw.get("authorizers", []), "authorizers", here)
        if not authorizers:
            raise PolicyTestError(f"{here}: needs authorizers or a passphrase")
        cases.append(
            Case(
                path,
                name,
                policies,
                credentials,
                tuple(case_values),
                tuple(attributes.items()),
                tuple(authorizers),
                expect,
            )
        )
    return cases


def run_files(paths: Iterable[str | Path], out: TextIO) -> int:
    """Run every case of every file, print a line per case and a summary; 1 on any failure.

    A failed case is followed by its trace (indented), which says which assertion and
    clause gave the unexpected answer.
    """
    passed = failed = 0
    for path in paths:
        try:
            cases = load_cases(path)
            session = cases[0].session()
        except PolicyTestError as exc:
            out.write(f"FAIL {exc}\n")
            failed += 1
            continue
        for case in cases:
            try:
                outcome = case.run(session)
            except KeyNoteError as exc:
                out.write(f"FAIL {case.id}: {exc}\n")
                failed += 1
                continue
            if outcome.passed:
                out.write(f"PASS {case.id}\n")
                passed += 1
            else:
                out.write(f"FAIL {case.id}: {outcome.detail}\n")
                for line in outcome.trace.splitlines():
                    out.write(f"    {line}\n")
                failed += 1
    out.write(f"{passed} passed, {failed} failed\n")
    return 1 if failed else 0
