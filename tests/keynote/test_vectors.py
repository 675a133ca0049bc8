"""Acceptance: the reference's testsuite and signed vectors through the real `keynote` script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

VECTORS = Path("/work/shared/vectors/keynote")
TESTSUITE = VECTORS / "testsuite"
SIGNED = VECTORS / "signed"
KEYNOTE = Path(sys.executable).parent / "keynote"  # the console script `pip install -e .` makes


def keynote(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEYNOTE), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def suite_args(authorizers: list[str]) -> list[str]:
    args = ["verify", "-e", "test-env", "-r", "false,maybe,probably,true"]
    for a in authorizers:
        args += ["-k", a]
    for n in range(1, 8):
        args += ["-l", f"test-assertion{n}"]
    return args


def test_reference_testsuite_is_true() -> None:
    """The reference's `make test` command (vectors/keynote/README.md)."""
    r = keynote(*suite_args(["auth1", "auth2", "auth3", "auth4"]), cwd=TESTSUITE)
    assert (r.returncode, r.stdout, r.stderr) == (0, "Query result = true\n", "")


def test_testsuite_without_keye_is_false() -> None:
    r = keynote(*suite_args(["auth1", "auth3", "auth4"]), cwd=TESTSUITE)
    assert (r.returncode, r.stdout) == (0, "Query result = false\n")


def test_key_file_order_does_not_matter() -> None:
    """The reference fails with auth2 last (stale bytes in its -k buffer); we do not.

    test-assertion7 needs KeyE not to be first in _ACTION_AUTHORIZERS, which
    lists the most recent -k first, so auth2 goes anywhere but last.
    """
    r = keynote(*suite_args(["auth4", "auth2", "auth3", "auth1"]), cwd=TESTSUITE)
    assert (r.returncode, r.stdout, r.stderr) == (0, "Query result = true\n", "")


@pytest.mark.parametrize(
    ("credential", "answer"),
    [
        ("cred-rsa-sha1-hex", "true"),
        ("cred-rsa-md5-base64", "true"),
        ("cred-rsa-sha1-hex-tampered", "false"),
        ("cred-rsa-sha1-base64-carol", "false"),  # policy-alice trusts only alice's key
    ],
)
def test_signed_credential_chain(credential: str, answer: str) -> None:
    r = keynote(
        "verify",
        "-r",
        "false,true",
        "-e",
        "env",
        "-k",
        "bob.key",
        "-l",
        "policy-alice",
        credential,
        cwd=SIGNED,
    )
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == f"Query result = {answer}"


def test_unsigned_credential_is_reported(tmp_path: Path) -> None:
    """A reached credential without a good signature grants nothing and is listed as failed."""
    text = (SIGNED / "cred-rsa-sha1-hex").read_text()
    unsigned = tmp_path / "unsigned"
    unsigned.write_text(text[: text.index("Signature:")])
    r = keynote(
        "verify",
        "-r",
        "false,true",
        "-e",
        str(SIGNED / "env"),
        "-k",
        str(SIGNED / "bob.key"),
        "-l",
        str(SIGNED / "policy-alice"),
        str(unsigned),
        cwd=tmp_path,
    )
    assert (r.returncode, r.stdout) == (
        0,
        "Query result = false\nFailed assertion 1 due to signature verification failure.\n",
    )


@pytest.mark.parametrize("line", (SIGNED / "SIGVER.expected").read_text().splitlines())
def test_sigver_matches_reference_output(line: str) -> None:
    name, expected = line.split("\t")
    r = keynote("sigver", name, cwd=SIGNED)
    assert (r.returncode, r.stdout) == (0, expected + "\n")


def test_resigned_vector_is_byte_identical() -> None:
    """`keynote sign` output appended after `Signature: ` rebuilds the reference's file."""
    text = (SIGNED / "cred-rsa-sha1-hex").read_text()
    r = keynote("sign", "sig-rsa-sha1-hex:", "cred-rsa-sha1-hex", "alice.priv", cwd=SIGNED)
    assert r.returncode == 0, r.stderr
    head = text[: text.index("Signature:") + len("Signature:")]
    assert head + " " + r.stdout == text


def test_python_dash_m_runs_the_same_command() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "keynote", "sigver", "cred-rsa-sha1-hex"],
        cwd=SIGNED,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (r.returncode, r.stdout) == (0, "Signature on assertion 0 verified.\n")


def test_x509_signing_as_the_reference_make_test_sig(tmp_path: Path) -> None:
    """libkeynote's `make test-sig`: an X.509 Authorizer, `sign -v sig-x509-sha1-base64:`
    appended to the file, then `sigver` (the reference cannot do this on OpenSSL 3)."""
    import base64
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BenCo CA")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "test.key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    text = (TESTSUITE / "test-assertion1").read_text()
    text = text.replace('authorizer: "POLICY"', f'authorizer: "x509-base64:{b64}"')
    signed = tmp_path / "test-assertion1-signed"
    signed.write_text(text + "signature:\n")
    r = keynote("sign", "-v", "sig-x509-sha1-base64:", signed.name, "test.key.pem", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "Signature verified.\n")
    with signed.open("a") as f:
        f.write(r.stdout)
    r = keynote("sigver", signed.name, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "Signature on assertion 0 verified.\n")
