"""The `keynote` command: the reference keynote(1) subcommands plus `syntax` and `test`.

`verify`, `sign`, `sigver` and `keygen` take the reference's arguments and print
its lines on its streams with its exit codes (reference/keynote.md 5), except
for its bugs: `-k` files are read afresh each time (no stale bytes from a
longer earlier file), and private keys from `keygen` are created mode 0600.
New: `verify --explain` prints how the answer was reached, `syntax FILE...`
checks assertion files, and `test FILE...` runs policy unit tests (TOML).

Imports are lazy: `verify` must start in well under 150 ms, so the crypto
library is only loaded by the subcommands (and keys) that need it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from keynote import Session
    from keynote.keys import PrivateKey

__all__ = ["main"]

_MAIN_USAGE = (
    "Usage:\n"
    "\tkeygen ...\n"
    "\tsign ...\n"
    "\tsigver ...\n"
    "\tverify ...\n"
    "\tsyntax ...\n"
    "\ttest ...\n"
    "Issue one of the commands by itself to get more help, e.g., keynote sign\n"
)
_VERIFY_USAGE = (
    "Arguments:\n"
    "\t-h:             This message\n"
    "\t-r <valuelist>: Comma separated, ordered return-value list\n"
    "\t-e <filename>:  Environment settings\n"
    "\t-l <filename>:  Trusted (local) assertion\n"
    "\t-k <filename>:  File containing key\n"
    "\t--explain:      Print how the result was reached\n"
    "Followed by a list of:\n"
    "\t<filename>:     Non-local assertion\n"
)
_SIGN_USAGE = (
    "Arguments:\n"
    "\t[-v] <AlgorithmName> <AssertionFile> <PrivateKeyFile> [<print-offset> [<print-length>]]\n"
)
_SIGVER_USAGE = "Arguments:\n\t<AssertionFile>\n"
_KEYGEN_USAGE = (
    "Arguments:\n"
    "\t<AlgorithmName> <keysize> <PublicKeyFile> <PrivateKeyFile> "
    "[<print-offset>] [<print-length>]\n"
)
_SYNTAX_USAGE = "Arguments:\n\t<AssertionFile> ...\nPrints every error as file:line:col: message.\n"
_TEST_USAGE = "Arguments:\n\t<TestFile.toml> ...\nRuns the policy test cases in each file.\n"

# Fields libkeynote parses only when a query reaches the assertion (keynote.md 1.1 item 9).
_LAZY_FIELDS = frozenset({"Authorizer", "Licensees", "Conditions", "Signature"})

_FAILURE_LINES = (
    ("memory", "Failed assertion {} due to memory error."),
    ("syntax", "Failed assertion {} due to syntax or semantic error."),
    ("signature", "Failed assertion {} due to signature verification failure."),
    ("other", "Failed assertion {} due to unspecified error."),
)


class _Exit(Exception):
    """Stop a subcommand with an exit status (messages were already printed)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _err(message: str) -> None:
    sys.stderr.write(message if message.endswith("\n") else message + "\n")


def _read(path: str) -> str:
    """Read a file as text; bytes that are not UTF-8 survive (signatures cover them)."""
    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "surrogateescape")


def _read_or_perror(path: str) -> str:
    try:
        return _read(path)
    except OSError as exc:
        _err(f"{path}: {exc.strerror or exc}")
        raise _Exit(1) from None


def first_assertion(text: str) -> str:
    """The first assertion of a file, as the reference `verify` passes each file whole.

    libkeynote stops an assertion at its first blank line and ignores the rest
    of the buffer (reference/keynote.md 1.1 item 7); the testsuite relies on it.
    """
    start = 0
    while start < len(text) and text[start].isspace():
        start += 1
    end = text.find("\n\n", start)
    return text if end < 0 else text[: end + 1]


# --- verify ---------------------------------------------------------------------------------


def _failure_category(reason: object) -> str:
    text = str(getattr(reason, "name", reason)).lower()
    for category in ("memory", "syntax", "signature"):
        if category in text:
            return category
    return "other"


def cmd_verify(args: Sequence[str]) -> int:
    """`keynote verify [-h] [--explain] [-e file] [-k file] [-l file] -r retlist [file ...]`."""
    import getopt

    if not args:
        _err(_VERIFY_USAGE)
        return 1
    try:
        opts, files = getopt.gnu_getopt(list(args), "hqistl:e:k:r:", ["explain"])
    except getopt.GetoptError as exc:
        _err(f"keynote: {exc.msg}")
        _err(_VERIFY_USAGE)
        return 1

    from keynote import KeyNoteError, Session
    from keynote.envfile import EnvFileError, parse_env_file, read_key_file
    from keynote.keys import canonical_principal

    session = Session(cache=True)  # a one-shot process: reuse ASTs parsed by earlier runs
    values: list[str] | None = None
    explain = False
    have_env = have_key = have_local = False
    for opt, arg in opts:
        if opt == "-h":
            _err(_VERIFY_USAGE)
            return 0
        if opt == "--explain":
            explain = True
        elif opt == "-r":
            if values is not None:
                _err("Do not define two sets of return values.")
                return 1
            values = arg.split(",")
        elif opt == "-e":
            text = _read_or_perror(arg)
            try:
                pairs = parse_env_file(text, arg)
            except EnvFileError as exc:
                _err(f"Syntax error in environment file {arg}, line {exc.line}")
                _err(f"  {exc}")
                return 1
            for name, value in pairs:
                session.set_attribute(name, value)
            have_env = True
        elif opt == "-k":
            text = _read_or_perror(arg)
            try:
                principal = read_key_file(text, arg)
                canonical_principal(principal)  # a bad key is an error here, as in the reference
                session.add_authorizer(principal)
            except (EnvFileError, KeyNoteError, ValueError) as exc:
                _err(f"Syntax error adding authorizer {arg}")
                _err(f"  {exc}")
                return 1
            have_key = True
        elif opt == "-l":
            _add_assertion_file(session, arg, trusted=True)
            have_local = True
        else:  # -q -i -s -t are accepted by the reference's getopt string but unused
            _err(_VERIFY_USAGE)
            return 1
    if values is None:
        _err("Should set return values before evaluations begin.")
        return 1
    if not have_env:
        _err("Should set environment before evaluations begin.")
        return 1
    if not have_key:
        _err("Should specify at least one action authorizer.")
        return 1
    if not have_local:
        _err("Should specify at least one trusted assertion (POLICY).")
        return 1
    for path in reversed(files):  # the reference adds untrusted files from last to first
        _add_assertion_file(session, path, trusted=False)

    try:
        result = session.query(values, explain=explain)
    except KeyNoteError as exc:
        print("Query result = <session or other information not found!>")
        _err(f"  {exc}")
        return 1
    print(f"Query result = {result.value}")
    failed = list(result.failed)
    for category, line in _FAILURE_LINES:
        for aid, reason in failed:
            if _failure_category(reason) == category:
                print(line.format(aid))
    if explain and result.trace is not None:
        print(str(result.trace).rstrip("\n"))
    return 0


def _add_assertion_file(session: Session, path: str, *, trusted: bool) -> None:
    from keynote import KeyNoteError, KeyNoteSyntaxError

    text = first_assertion(_read_or_perror(path))
    try:
        session.add_assertions(text, trusted=trusted, source=path)
    except KeyNoteSyntaxError as exc:
        if exc.field in _LAZY_FIELDS:
            # The reference parses these fields only when a query reaches the assertion,
            # which then fails with a "Failed assertion N" line: keep it as a failed entry.
            session.add_assertions(text, trusted=trusted, source=path, strict=False)
        else:
            _err(f"Error for assertion in file {path}, errno -2.")
        _err(f"  {exc}")
    except KeyNoteError as exc:
        _err(f"Error for assertion in file {path}, errno -2.")
        _err(f"  {exc}")


# --- sign / sigver ----------------------------------------------------------------------------


def _algorithm_with_colon(name: str) -> str:
    if not name.endswith(":"):
        _err(f"Algorithm name [{name}] should be terminated with a colon, fixing.")
        name += ":"
    return name


def _layout_args(extra: Sequence[str], algname: str) -> tuple[int, int]:
    offset, length = 12, 50
    try:
        if len(extra) >= 1:
            offset = int(extra[0])
        if len(extra) >= 2:
            length = int(extra[1])
    except ValueError:
        _err("Print offset and length must be numbers.")
        raise _Exit(1) from None
    if offset < 0:
        _err(f"Negative print offset {offset}")
        raise _Exit(1)
    if length <= 0:
        _err(f"Invalid print length {length}")
        raise _Exit(1)
    if length < len(algname) + 2:
        _err(f"Print length {length} must be at least {len(algname) + 2} for {algname}")
        raise _Exit(1)
    return offset, length


def cmd_sign(args: Sequence[str]) -> int:
    """`keynote sign [-v] AlgorithmName AssertionFile PrivateKeyFile [offset] [length]`."""
    args = list(args)
    verify = bool(args) and args[0] == "-v"
    if verify:
        args = args[1:]
    if not 3 <= len(args) <= 5:
        _err(_SIGN_USAGE)
        return 1
    algorithm = _algorithm_with_colon(args[0])
    offset, length = _layout_args(args[3:], "")
    assertion = _read_or_perror(args[1])
    if not assertion:
        _err("Error: zero-sized assertion-file.")
        return 1
    key_text = _read_or_perror(args[2])
    if not key_text:
        _err("Illegal key-file size 0")
        return 1

    from keynote.keys import layout_key
    from keynote.sign import SignatureError, sign_assertion, split_assertion, verify_assertion

    try:
        value = sign_assertion(assertion, algorithm, key_text, source=args[1])
    except SignatureError as exc:
        _err(
            "Bad assertion or algorithm format, or unsupported algorithm while creating signature."
        )
        _err(f"  {exc}")
        return 1
    if verify:
        parsed = split_assertion(assertion)
        stop = parsed.signature_offset
        assert stop is not None  # signing needed the field
        signed = assertion[:stop] + 'Signature: "' + value + '"\n'
        if not verify_assertion(signed):
            _err("Signature did not verify!")
            return 1
        _err("Signature verified.")
    sys.stdout.write(layout_key("", value, offset, length))
    return 0


def read_asserts(text: str) -> list[str]:
    """Split a file at blank lines, dropping empty pieces (libkeynote's `kn_read_asserts`)."""
    from keynote.fields import chunks

    return [text[c.start : c.end] for c in chunks(text)]


def cmd_sigver(args: Sequence[str]) -> int:
    """`keynote sigver AssertionFile`: check the signature of every assertion in the file."""
    if len(args) != 1:
        _err(_SIGVER_USAGE)
        return 0
    path = args[0]
    pieces = read_asserts(_read_or_perror(path))
    if not pieces:
        _err(f"No assertions found in {path}.")
        return 1

    from keynote.sign import SignatureError, SigResult, check_assertion

    for number, piece in enumerate(pieces):
        try:
            result = check_assertion(piece, path)
        except SignatureError as exc:
            _err(f"Syntax error while parsing assertion {number}.")
            _err(f"  {exc}")
            continue
        if result is SigResult.TRUE:
            print(f"Signature on assertion {number} verified.")
        else:
            print(f"Signature on assertion {number} did not verify!")
    return 0


# --- keygen ---------------------------------------------------------------------------------


def _open_output(path: str, private: bool) -> TextIO:
    if path == "-":
        return sys.stdout
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "w")
    return open(path, "w")


def cmd_keygen(args: Sequence[str]) -> int:
    """`keynote keygen AlgorithmName KeySize PublicKeyFile PrivateKeyFile [offset] [length]`."""
    if not 4 <= len(args) <= 6:
        _err(_KEYGEN_USAGE)
        return 0
    algorithm = _algorithm_with_colon(args[0])
    try:
        size = int(args[1])
    except ValueError:
        size = 0
    if size <= 0:
        _err(f"Invalid specified keysize {args[1]}")
        return 1
    offset, length = _layout_args(args[4:], "private-" + algorithm)
    kind = algorithm.lower()
    if kind not in ("rsa-hex:", "rsa-base64:", "dsa-hex:", "dsa-base64:"):
        _err(f"Unknown/unsupported algorithm [{algorithm}]")
        return 1

    from keynote import keys

    encoding = keys.Encoding.HEX if kind.endswith("hex:") else keys.Encoding.BASE64
    try:
        private = _generate(kind[:3], size)
    except ValueError as exc:
        _err(f"Failed to generate a {size}-bit {kind[:3].upper()} key: {exc}")
        return 1
    public_text = keys.encode_key(private.public(), encoding)
    private_text = keys.encode_private_key(private, encoding)
    outputs = [
        (args[2], False, keys.layout_key(kind, public_text[len(kind) :], offset, length)),
        (
            args[3],
            True,
            keys.layout_key("private-" + kind, private_text[len(kind) + 8 :], offset, length),
        ),
    ]
    for index, (path, is_private, text) in enumerate(outputs):
        if index == 1 and args[2] == "-" and args[3] == "-":
            sys.stdout.write("===========================\n")
        try:
            out = _open_output(path, is_private)
        except OSError as exc:
            _err(f"{path}: {exc.strerror or exc}")
            return 1
        try:
            out.write(text)
        finally:
            if out is not sys.stdout:
                out.close()
    return 0


def _generate(kind: str, size: int) -> PrivateKey:
    from keynote import keys

    if kind == "rsa":
        from cryptography.hazmat.primitives.asymmetric import rsa

        r = rsa.generate_private_key(public_exponent=65537, key_size=size).private_numbers()
        pub = r.public_numbers
        return keys.RSAPrivateKey(pub.n, pub.e, r.d, r.p, r.q, r.dmp1, r.dmq1, r.iqmp)
    from cryptography.hazmat.primitives.asymmetric import dsa

    d = dsa.generate_private_key(key_size=size).private_numbers()
    pn = d.public_numbers.parameter_numbers
    return keys.DSAPrivateKey(pn.p, pn.q, pn.g, d.public_numbers.y, d.x)


# --- syntax / test ----------------------------------------------------------------------------


def cmd_syntax(args: Sequence[str]) -> int:
    """`keynote syntax FILE...`: print every error as `file:line:col: message`; 1 if any."""
    if not args:
        _err(_SYNTAX_USAGE)
        return 1
    from keynote.parse import check_text

    status = 0
    for path in args:
        try:
            text = _read(path)
        except OSError as exc:
            _err(f"{path}: {exc.strerror or exc}")
            status = 1
            continue
        for error in check_text(text, path):
            print(str(error))
            status = 1
    return status


def cmd_test(args: Sequence[str]) -> int:
    """`keynote test FILE...`: run policy test cases; a line per case and a summary."""
    if not args:
        _err(_TEST_USAGE)
        return 1
    from keynote.policytest import run_files

    return run_files(args, sys.stdout)


_COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "verify": cmd_verify,
    "sign": cmd_sign,
    "sigver": cmd_sigver,
    "keygen": cmd_keygen,
    "syntax": cmd_syntax,
    "test": cmd_test,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch on the subcommand name, as `keynote-main.c` does."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in _COMMANDS:
        _err(_MAIN_USAGE)
        return 1
    try:
        return _COMMANDS[args[0]](args[1:])
    except _Exit as stop:
        return stop.status
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
