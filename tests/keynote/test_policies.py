"""The sample isakmpd.policy files: every case of every policies/*.toml, and the runner itself."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from keynote.policytest import (
    Case,
    PolicyTestError,
    load_cases,
    passphrase_principals,
    run_files,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"
CASES = [case for path in sorted(POLICIES.glob("*.toml")) for case in load_cases(path)]
POLICY = 'Authorizer: "POLICY"\nLicensees: "alice"\nConditions: app_domain == "x" -> "true";\n'


def test_there_are_sample_policies() -> None:
    names = {case.file.name for case in CASES}
    assert {"accept-all.toml", "passphrase-md5.toml", "x509-dn.toml", "subpolicies.toml"} <= names
    assert {case.expect for case in CASES} == {"true", "false"}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_policy_case(case: Case) -> None:
    outcome = case.run()
    assert outcome.passed, outcome.detail


def test_passphrase_principals() -> None:
    assert passphrase_principals("somepassword") == [
        "passphrase:somepassword",
        "passphrase-md5-hex:9c42a1346e333a770904b2a2b37fa7d3",
        "passphrase-sha1-hex:" + hashlib.sha1(b"somepassword").hexdigest(),
    ]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_case_fields(tmp_path: Path) -> None:
    write(tmp_path, "p.policy", POLICY.replace('"true"', "_MAX_TRUST"))
    toml = write(
        tmp_path,
        "t.toml",
        'policies = ["p.policy"]\nvalues = ["no", "maybe", "yes"]\n'
        '[attributes]\napp_domain = "x"\nn = 5\n'
        '[[case]]\nauthorizers = ["alice"]\nattributes = { n = "6" }\nexpect = "yes"\n'
        '[[case]]\nname = "own values"\npassphrase = "s"\nvalues = ["f", "t"]\nexpect = "f"\n',
    )
    first, second = load_cases(toml)
    assert first.name == "case 1"
    assert first.values == ("no", "maybe", "yes")
    assert dict(first.attributes) == {"app_domain": "x", "n": "6"}
    assert first.policies == (tmp_path / "p.policy",)
    assert second.authorizers == tuple(passphrase_principals("s"))
    assert second.values == ("f", "t")
    assert first.run().value == "yes"
    assert second.run().passed


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("policies = [", "Invalid value"),
        ('policies = ["p.policy"]\nbogus = 1\n', "unknown keys ['bogus']"),
        ("policies = []\n", "at least one policy"),
        ('policies = "p.policy"\n', "list of strings"),
        ('policies = ["p.policy"]\n', "no [[case]]"),
        ('policies = ["p.policy"]\ncase = [1]\n', "not a table"),
        ('policies = ["p.policy"]\n[[case]]\nexpect = "true"\n', "authorizers or a passphrase"),
        ('policies = ["p.policy"]\n[[case]]\nauthorizers = ["a"]\n', "expect must be one of"),
        ('policies = ["p.policy"]\n[[case]]\nauthorizers = ["a"]\nexpect = "yes"\n', "one of"),
        ('policies = ["p.policy"]\n[[case]]\nexpected = "true"\n', "unknown keys ['expected']"),
        ('policies = ["p.policy"]\n[[case]]\nname = 3\n', "name must be a string"),
        ('policies = ["p.policy"]\n[[case]]\npassphrase = 3\nexpect = "true"\n', "passphrase"),
        ('policies = ["p.policy"]\nattributes = 3\n', "attributes must be a table"),
        (
            'policies = ["p.policy"]\n[[case]]\nattributes = { a = true }\n'
            'authorizers = ["a"]\nexpect = "true"\n',
            "must be a string",
        ),
    ],
)
def test_malformed_test_files(tmp_path: Path, body: str, message: str) -> None:
    toml = write(tmp_path, "t.toml", body)
    with pytest.raises(PolicyTestError) as info:
        load_cases(toml)
    assert str(info.value).startswith(str(toml))
    assert message in str(info.value)


def test_missing_test_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyTestError, match="No such file"):
        load_cases(tmp_path / "none.toml")


def test_broken_policy_file_is_a_failure(tmp_path: Path) -> None:
    write(tmp_path, "p.policy", 'Authorizer: "POLICY"\nConditions: x == 10;\n')
    case = '[[case]]\nauthorizers = ["a"]\nexpect = "true"\n'
    bad = write(tmp_path, "bad.toml", 'policies = ["p.policy"]\n' + case)
    missing = write(tmp_path, "missing.toml", 'policies = ["nope.policy"]\n' + case)
    out = io.StringIO()
    assert run_files([bad, missing], out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"FAIL {bad}: ") and "p.policy:2:" in lines[0]
    assert lines[1].startswith(f"FAIL {missing}: cannot read ")
    assert lines[2] == "0 passed, 2 failed"


def test_run_files_reuses_one_session_per_file(tmp_path: Path) -> None:
    write(tmp_path, "p.policy", POLICY)
    toml = write(
        tmp_path,
        "t.toml",
        'policies = ["p.policy"]\n'
        '[[case]]\nauthorizers = ["alice"]\nattributes = { app_domain = "x" }\nexpect = "true"\n'
        '[[case]]\nauthorizers = ["bob"]\nattributes = { app_domain = "x" }\nexpect = "false"\n'
        '[[case]]\nauthorizers = ["alice"]\nexpect = "false"\n',
    )
    out = io.StringIO()
    assert run_files([toml], out) == 0
    assert out.getvalue().splitlines()[-1] == "3 passed, 0 failed"


def test_keynote_test_command_on_the_samples() -> None:
    """What an administrator runs: the installed `keynote test` over every sample."""
    script = Path(sys.executable).parent / "keynote"
    tomls = sorted(str(p) for p in POLICIES.glob("*.toml"))
    r = subprocess.run([str(script), "test", *tomls], capture_output=True, text=True, timeout=120)
    lines = r.stdout.splitlines()
    assert (r.returncode, r.stderr) == (0, "")
    assert lines[-1] == f"{len(CASES)} passed, 0 failed"
    assert len(lines) == len(CASES) + 1 and all(x.startswith("PASS ") for x in lines[:-1])
