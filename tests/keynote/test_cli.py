"""The `keynote` subcommands' arguments, output lines, streams and exit codes (in-process)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keynote import keys
from keynote.cli import first_assertion, main, read_asserts
from keynote.envfile import read_key_file
from keynote.sign import verify_assertion

VECTORS = Path("/work/shared/vectors/keynote")
SIGNED = VECTORS / "signed"
TESTSUITE = VECTORS / "testsuite"
POLICY = 'Authorizer: "POLICY"\nLicensees: "alice"\nConditions: app_domain == "x" -> "true";\n'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    return {
        "env": write(tmp_path, "env", 'app_domain = "x"\n'),
        "alice": write(tmp_path, "alice", '"alice"\n'),
        "policy": write(tmp_path, "policy", POLICY),
    }


# --- dispatch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["bogus"]])
def test_usage(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    status, out, err = run(capsys, *args)
    assert (status, out) == (1, "")
    assert err.startswith("Usage:\n\tkeygen ...\n\tsign ...\n\tsigver ...\n\tverify ...\n")
    assert "Issue one of the commands by itself" in err


# --- verify -----------------------------------------------------------------------------------


def test_verify_true(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    args = ["verify", "-r", "false,true", "-e", files["env"], "-k", files["alice"]]
    assert run(capsys, *args, "-l", files["policy"]) == (0, "Query result = true\n", "")


def test_verify_options_after_files(
    capsys: pytest.CaptureFixture[str], files: dict[str, str]
) -> None:
    """glibc getopt permutes, so the reference accepts options anywhere."""
    args = ["verify", "-l", files["policy"], "-r", "false,true"]
    status, out, _ = run(capsys, *args, "-e", files["env"], "-k", files["alice"])
    assert (status, out) == (0, "Query result = true\n")


def test_verify_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "verify", "-h")
    assert (status, out) == (0, "")
    assert "-r <valuelist>" in err


@pytest.mark.parametrize("flag", ["-q", "-i", "-s", "-t", "-x"])
def test_verify_unused_flags_print_usage(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    status, out, err = run(capsys, "verify", flag, "-r", "a")
    assert (status, out) == (1, "")
    assert "Arguments:" in err


def test_verify_without_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "verify")
    assert status == 1 and "Arguments:" in err


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("-r", "Should set return values before evaluations begin."),
        ("-e", "Should set environment before evaluations begin."),
        ("-k", "Should specify at least one action authorizer."),
        ("-l", "Should specify at least one trusted assertion (POLICY)."),
    ],
)
def test_verify_required_options(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], drop: str, message: str
) -> None:
    opts = {"-r": "false,true", "-e": files["env"], "-k": files["alice"], "-l": files["policy"]}
    del opts[drop]
    args = [x for pair in opts.items() for x in pair]
    assert run(capsys, "verify", *args) == (1, "", message + "\n")


def test_verify_checks_run_in_reference_order(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "verify", "--explain")
    assert (status, err) == (1, "Should set return values before evaluations begin.\n")


def test_verify_two_value_lists(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "verify", "-r", "a,b", "-r", "c")
    assert (status, err) == (1, "Do not define two sets of return values.\n")


def test_verify_bad_environment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    env = write(tmp_path, "env", 'a = "x"\nb = y\n')
    status, out, err = run(capsys, "verify", "-r", "f,t", "-e", env)
    assert (status, out) == (1, "")
    assert err.splitlines()[0] == f"Syntax error in environment file {env}, line 2"
    assert err.splitlines()[1].strip().startswith(f"{env}:2:5: ")


def test_verify_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    status, _, err = run(capsys, "verify", "-r", "f,t", "-e", missing)
    assert (status, err) == (1, f"{missing}: No such file or directory\n")


@pytest.mark.parametrize("key", ['alice"', '"rsa-hex:zz"', '"a" "b"', ""])
def test_verify_bad_key_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str) -> None:
    path = write(tmp_path, "k", key)
    status, out, err = run(capsys, "verify", "-r", "f,t", "-k", path)
    assert (status, out) == (1, "")
    assert err.splitlines()[0] == f"Syntax error adding authorizer {path}"


def test_verify_short_key_file_after_long_one(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    """The reference's -k buffer keeps stale bytes: "bob" after "alice" fails there."""
    bob = write(tmp_path, "bob", '"bob"')
    args = ["verify", "-r", "false,true", "-e", files["env"], "-l", files["policy"]]
    status, out, _ = run(capsys, *args, "-k", files["alice"], "-k", bob)
    assert (status, out) == (0, "Query result = true\n")


def test_verify_structural_error_in_local_assertion(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    bad = write(tmp_path, "bad", 'KeyNote-Version: 3\nAuthorizer: "POLICY"\n')
    args = ["verify", "-r", "false,true", "-e", files["env"], "-k", files["alice"]]
    status, out, err = run(capsys, *args, "-l", bad, "-l", files["policy"])
    assert (status, out) == (0, "Query result = true\n")
    assert err.splitlines()[0] == f"Error for assertion in file {bad}, errno -2."


def test_verify_conditions_error_is_a_failed_assertion(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    """libkeynote parses Conditions lazily: the error shows as a Failed line, id kept."""
    bad = write(tmp_path, "bad", 'Authorizer: "POLICY"\nConditions: x == 10;\n')
    args = ["verify", "-r", "false,true", "-e", files["env"], "-k", files["alice"]]
    status, out, _ = run(capsys, *args, "-l", bad, "-l", files["policy"])
    assert status == 0
    assert out == "Query result = true\nFailed assertion 0 due to syntax or semantic error.\n"


def test_verify_untrusted_files_are_added_last_to_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    env = write(tmp_path, "env", 'a = "b"\n')
    key = write(tmp_path, "k", '"carol"')
    policy = write(tmp_path, "p", 'Authorizer: "POLICY"\nLicensees: "x" || "y"\n')
    first = write(tmp_path, "c1", 'Authorizer: "x"\nLicensees: "carol"\n')
    second = write(tmp_path, "c2", 'Authorizer: "y"\nLicensees: "carol"\n')
    status, out, _ = run(
        capsys, "verify", "-r", "false,true", "-e", env, "-k", key, "-l", policy, first, second
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "Query result = false"
    assert sorted(lines[1:]) == [
        "Failed assertion 1 due to signature verification failure.",
        "Failed assertion 2 due to signature verification failure.",
    ]


def test_verify_explain(capsys: pytest.CaptureFixture[str], files: dict[str, str]) -> None:
    args = ["verify", "--explain", "-r", "false,true", "-e", files["env"], "-k", files["alice"]]
    status, out, _ = run(capsys, *args, "-l", files["policy"])
    lines = out.splitlines()
    assert status == 0 and lines[0] == "Query result = true"
    assert len(lines) > 2 and "POLICY" in out and "alice" in out


def test_verify_uses_only_the_first_assertion_of_a_file(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    policy = write(tmp_path, "two", 'Authorizer: "POLICY"\nLicensees: "bob"\n\n' + POLICY)
    args = ["verify", "-r", "false,true", "-e", files["env"], "-k", files["alice"]]
    assert run(capsys, *args, "-l", policy)[1] == "Query result = false\n"


def test_first_assertion() -> None:
    assert first_assertion("\n\nA: 1\nB: 2\n\nC: 3\n") == "\n\nA: 1\nB: 2\n"
    assert first_assertion("A: 1") == "A: 1"


# --- sign -------------------------------------------------------------------------------------


def test_sign_matches_reference_layout(capsys: pytest.CaptureFixture[str]) -> None:
    text = (SIGNED / "cred-rsa-md5-base64").read_text()
    status, out, err = run(
        capsys,
        "sign",
        "sig-rsa-md5-base64:",
        str(SIGNED / "cred-rsa-md5-base64"),
        str(SIGNED / "alice.priv"),
    )
    assert (status, err) == (0, "")
    assert text[: text.index("Signature:") + len("Signature:")] + " " + out == text


def test_sign_verify_flag_and_colon_fix(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys,
        "sign",
        "-v",
        "sig-dsa-sha1-hex",
        str(SIGNED / "cred-dsa-sha1-hex"),
        str(SIGNED / "dave.priv"),
        "4",
        "30",
    )
    assert status == 0
    assert err == (
        "Algorithm name [sig-dsa-sha1-hex] should be terminated with a colon, fixing.\n"
        "Signature verified.\n"
    )
    lines = out.splitlines()
    assert lines[0].startswith('    "sig-dsa-sha1-hex:') and len(lines[0]) == 34
    text = (SIGNED / "cred-dsa-sha1-hex").read_text()
    assert verify_assertion(text[: text.index("Signature:")] + "Signature:" + out)


def test_sign_wrong_key_fails_verification(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(
        capsys,
        "sign",
        "-v",
        "sig-rsa-sha1-hex:",
        str(SIGNED / "cred-rsa-sha1-hex"),
        str(SIGNED / "carol.priv"),
    )
    assert (status, err) == (1, "Signature did not verify!\n")


@pytest.mark.parametrize("args", [[], ["a", "b"], ["-v", "a", "b"], ["a", "b", "c", "1", "2", "3"]])
def test_sign_usage(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    status, out, err = run(capsys, "sign", *args)
    assert (status, out) == (1, "")
    assert "Arguments:" in err


def test_sign_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = write(tmp_path, "empty", "")
    cred = str(SIGNED / "cred-rsa-sha1-hex")
    alice = str(SIGNED / "alice.priv")
    assert run(capsys, "sign", "sig-rsa-sha1-hex:", empty, alice) == (
        1,
        "",
        "Error: zero-sized assertion-file.\n",
    )
    assert run(capsys, "sign", "sig-rsa-sha1-hex:", cred, empty) == (
        1,
        "",
        "Illegal key-file size 0\n",
    )
    status, _, err = run(capsys, "sign", "sig-rsa-sha1-hex:", cred, str(SIGNED / "dave.priv"))
    assert status == 1
    assert err.startswith(
        "Bad assertion or algorithm format, or unsupported algorithm while creating signature.\n"
    )
    status, _, err = run(capsys, "sign", "sig-rsa-sha1-hex:", cred, alice, "-1")
    assert (status, err) == (1, "Negative print offset -1\n")
    status, _, err = run(capsys, "sign", "sig-rsa-sha1-hex:", cred, alice, "1", "0")
    assert (status, err) == (1, "Invalid print length 0\n")
    status, _, err = run(capsys, "sign", "sig-rsa-sha1-hex:", cred, alice, "x")
    assert status == 1 and "numbers" in err


# --- sigver -----------------------------------------------------------------------------------


def test_sigver_multi(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """keynote.md 5.4's example: rsa-signed, unsigned, dsa-signed."""
    unsigned = 'Authorizer: "x"\nLicensees: "y"\n'
    text = "\n".join(
        [
            (SIGNED / "cred-rsa-sha1-hex").read_text(),
            unsigned,
            (SIGNED / "cred-dsa-sha1-hex").read_text(),
        ]
    )
    path = write(tmp_path, "multi", text)
    assert run(capsys, "sigver", path) == (
        0,
        "Signature on assertion 0 verified.\n"
        "Signature on assertion 1 did not verify!\n"
        "Signature on assertion 2 verified.\n",
        "",
    )


def test_sigver_syntax_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "bad", 'Authorizer: "x"\n\nBogus: 1\n')
    status, out, err = run(capsys, "sigver", path)
    assert (status, out) == (0, "Signature on assertion 0 did not verify!\n")
    assert err.splitlines()[0] == "Syntax error while parsing assertion 1."


def test_sigver_usage_and_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "sigver")
    assert status == 0 and "Arguments:" in err
    path = write(tmp_path, "e", "\n  \n\n")
    assert run(capsys, "sigver", path) == (1, "", f"No assertions found in {path}.\n")


def test_read_asserts() -> None:
    assert read_asserts("a\n\n\n\nb\n \n\nc") == ["a\n", "\nb\n \n", "\nc"]


# --- keygen -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["rsa-hex:", "rsa-base64:", "dsa-hex:", "dsa-base64:"])
def test_keygen_sign_sigver(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, algorithm: str
) -> None:
    pub, priv = str(tmp_path / "k.pub"), str(tmp_path / "k.priv")
    assert run(capsys, "keygen", algorithm, "1024", pub, priv) == (0, "", "")
    assert stat.S_IMODE(os.stat(priv).st_mode) == 0o600
    public = read_key_file(Path(pub).read_text())
    private = keys.decode_private_key(read_key_file(Path(priv).read_text()))
    assert public.startswith(algorithm)
    assert keys.canonical_principal(public) == keys.encode_key(private.public())
    assert all(len(line) == 62 for line in Path(pub).read_text().splitlines()[:-1])
    kind = algorithm.split("-")[0]
    cred = write(tmp_path, "cred", f'Authorizer: "{public}"\nLicensees: "bob"\nSignature:')
    status, out, _ = run(capsys, "sign", f"sig-{kind}-sha1-base64:", cred, priv)
    assert status == 0
    Path(cred).write_text(Path(cred).read_text() + out)
    assert run(capsys, "sigver", cred)[1] == "Signature on assertion 0 verified.\n"


def test_keygen_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "keygen", "rsa-hex:", "1024", "-", "-", "0", "70")
    assert status == 0
    public, private = out.split("===========================\n")
    assert public.startswith('"rsa-hex:') and private.startswith('"private-rsa-hex:')
    assert max(len(line) for line in out.splitlines()) == 70


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["rsa-hex:", "1024", "a"], 0, "Arguments:"),
        (["rsa-hex:", "0", "a", "b"], 1, "Invalid specified keysize 0"),
        (["rsa-hex:", "big", "a", "b"], 1, "Invalid specified keysize big"),
        (["x509-hex:", "1024", "a", "b"], 1, "Unknown/unsupported algorithm [x509-hex:]"),
        (["rsa-hex:", "512", "a", "b"], 1, "Failed to generate a 512-bit RSA key"),
        (["rsa-hex:", "1024", "a", "b", "-3"], 1, "Negative print offset -3"),
        (["rsa-hex:", "1024", "a", "b", "1", "10"], 1, "Print length 10 must be at least 18"),
    ],
)
def test_keygen_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    status: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    got, out, err = run(capsys, "keygen", *args)
    assert (got, out) == (status, "")
    assert message in err
    assert not (tmp_path / "a").exists()


def test_keygen_colon_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "keygen", "DSA-HEX", "1024", str(tmp_path / "p"), "-")
    assert status == 0
    assert err == "Algorithm name [DSA-HEX] should be terminated with a colon, fixing.\n"


def test_keygen_unwritable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "keygen", "rsa-hex:", "1024", str(tmp_path / "no" / "p"), "-")
    assert status == 1 and "No such file or directory" in err


# --- syntax and test --------------------------------------------------------------------------


def test_syntax_clean(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(TESTSUITE / f"test-assertion{n}") for n in range(1, 7)]
    assert run(capsys, "syntax", *paths) == (0, "", "")


def test_syntax_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.policy",
        'Authorizer: "POLICY"\nConditions: x == 10;\n\nAuthorizer: "a"\nLicensees: "b" &&\n',
    )
    status, out, err = run(capsys, "syntax", bad, str(tmp_path / "missing"))
    assert status == 1
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{bad}:2:")
    assert lines[1].startswith(f"{bad}:5:")
    assert "No such file or directory" in err


def test_syntax_usage(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "syntax")
    assert status == 1 and "Arguments:" in err


def test_test_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, "p.policy", POLICY)
    toml = write(
        tmp_path,
        "t.toml",
        'policies = ["p.policy"]\n'
        '[[case]]\nname = "ok"\nauthorizers = ["alice"]\nattributes = { app_domain = "x" }\n'
        'expect = "true"\n'
        '[[case]]\nname = "wrong"\nauthorizers = ["alice"]\nexpect = "true"\n',
    )
    status, out, _ = run(capsys, "test", toml)
    assert status == 1
    lines = out.splitlines()
    assert lines[:2] == ["PASS t.toml::ok", "FAIL t.toml::wrong: expected 'true', got 'false'"]
    assert lines[-1] == "1 passed, 1 failed"
    trace = lines[2:-1]  # why it failed, indented
    assert trace and all(line.startswith("    ") for line in trace)
    assert any("POLICY" in line for line in trace)
    status, _, err = run(capsys, "test")
    assert status == 1 and "Arguments:" in err


def test_every_sample_policy_passes_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2] / "policies"
    paths = sorted(str(p) for p in root.iterdir() if p.suffix in (".policy", ".cred"))
    assert paths
    assert run(capsys, "syntax", *paths) == (0, "", "")


def test_copy_of_vector_directory_still_verifies(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(SIGNED / "cred-rsa-sha1-base64-carol", tmp_path / "c")
    assert run(capsys, "sigver", str(tmp_path / "c"))[1] == "Signature on assertion 0 verified.\n"


# --- bad input never crashes --------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        'Authorizer: "POLICY"\n',
        "Licensees: ",
        '"alice"',
        " && ",
        "Conditions: ",
        'a == "x" -> "true";',
        "Signature: ",
        '"sig-rsa-sha1-hex:00"',
        "\n",
        "\n\n",
        "#",
        "\\",
        "rsa-hex:zz",
        "KeyNote-Version: 2\n",
        " = ",
        "(",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    env=st.text(max_size=40) | st.lists(_FRAGMENTS, max_size=6).map("".join),
    key=st.text(max_size=30) | st.lists(_FRAGMENTS, max_size=4).map("".join),
    policy=st.text(max_size=80) | st.lists(_FRAGMENTS, max_size=12).map("".join),
)
def test_any_input_files_give_an_answer_or_a_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, env: str, key: str, policy: str
) -> None:
    paths = [write(tmp_path, n, t) for n, t in (("e", env), ("k", key), ("p", policy))]
    for args in (
        ["verify", "-r", "false,true", "-e", paths[0], "-k", paths[1], "-l", paths[2], paths[2]],
        ["sigver", paths[2]],
        ["syntax", paths[2], paths[0]],
        ["sign", "sig-rsa-sha1-hex:", paths[2], paths[1]],
    ):
        status, out, err = run(capsys, *args)
        assert status in (0, 1)
        assert "Traceback" not in out + err


def test_verify_binary_keys_work(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """RFC 2792 binary principals: broken in libkeynote (kn_decode_key's return code)."""
    env = write(tmp_path, "env", 'a = "b"\n')
    key = write(tmp_path, "k", '"binary-hex:00FF10"')
    policy = write(tmp_path, "p", 'Authorizer: "POLICY"\nLicensees: "binary-base64:AP8Q"\n')
    args = ["verify", "-r", "false,true", "-e", env, "-k", key, "-l", policy]
    assert run(capsys, *args) == (0, "Query result = true\n", "")


def test_verify_malformed_authorizer_does_not_poison_the_query(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    """libkeynote fails every query when any assertion's Authorizer does not lex (2.6.1)."""
    bad = write(tmp_path, "bad", 'Authorizer: ("x")\nLicensees: "alice"\n')
    args = ["verify", "-r", "false,true", "-e", files["env"], "-k", files["alice"]]
    status, out, _ = run(capsys, *args, "-l", files["policy"], bad)
    assert status == 0
    assert out == "Query result = true\nFailed assertion 1 due to syntax or semantic error.\n"
