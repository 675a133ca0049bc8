"""Every signature identifier of the IANA KeyNote registry (RFC 2792, RFC 5708), checked
against answers derived without keynote.sign.

The digest comes from hashlib and from `openssl dgst`; the PKCS#1 type-1 block is built
here by hand from RFC 2792 4.2 (a DER OCTET STRING holding the digest, as libkeynote
signs it); RSA signatures are deterministic, so `openssl pkeyutl -sign` over that block
must give the same bytes, and `openssl pkeyutl -verifyrecover` with the certificate must
give the block back.  DSA signatures are checked by `openssl pkeyutl -verify` and by
cryptography.  RFC 5708 4 makes sig-x509 signatures identical to the RFC 2792 RSA or
DSA signature for the certificate's key; where libkeynote differs (sig-x509-sha1 with a
DigestInfo naming OID 1.3.14.3.2.15) the test says so.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa, utils
from cryptography.x509.oid import NameOID

from keynote import keys, sign
from keynote.cli import main
from keynote.envfile import read_key_file

SIGNED = Path("/work/shared/vectors/keynote/signed")
POLICIES = Path(__file__).resolve().parents[2] / "policies"
ENCODINGS = ("hex", "base64")
RSA_HASHES = ("md5", "sha1", "sha256", "sha512", "ripemd160")
X509_HASHES = ("sha1", "sha256", "sha512", "ripemd160")
RSA_IDS = [f"sig-rsa-{h}-{e}:" for h in RSA_HASHES for e in ENCODINGS]
DSA_IDS = [f"sig-dsa-sha1-{e}:" for e in ENCODINGS]
X509_IDS = [f"sig-x509-{h}-{e}:" for h in X509_HASHES for e in ENCODINGS]
REGISTRY = RSA_IDS + DSA_IDS + X509_IDS  # the 20 identifiers IANA lists (RFC 2792 6, RFC 5708 7)
UNSIGNED = (
    "KeyNote-Version: 2\n"
    'Authorizer: "{}"\n'
    'Licensees: "bob"\n'
    'Conditions: app_domain == "IPsec policy" -> "true";\n'
    "Signature:"
)
LIBKEYNOTE_X509_SHA1 = bytes.fromhex("3021300906052b0e03020f05000414")  # RSA_sign(NID 42) prefix


@dataclass(frozen=True)
class Signer:
    """One key pair in every form the tests hand out."""

    keynote_private: str  # private-rsa-hex:... / private-dsa-hex:...
    pem_private: str
    principal: str  # rsa-hex:... / dsa-hex:...
    certificate: str  # x509-base64:... carrying the same key
    pem_public: Path
    pem_certificate: Path


def _cert(private: rsa.RSAPrivateKey | dsa.DSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "KeyNote RFC 5708")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(5708)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .sign(private, hashes.SHA256())
    )


def _signer(name: str, directory: Path) -> Signer:
    keynote_private = read_key_file((SIGNED / f"{name}.priv").read_text())
    key = keys.decode_private_key(keynote_private)
    private: rsa.RSAPrivateKey | dsa.DSAPrivateKey
    if isinstance(key, keys.RSAPrivateKey):
        public_numbers = rsa.RSAPublicNumbers(key.e, key.n)
        private = rsa.RSAPrivateNumbers(
            key.p, key.q, key.d, key.dp, key.dq, key.qinv, public_numbers
        ).private_key()
    else:
        params = dsa.DSAParameterNumbers(key.p, key.q, key.g)
        private = dsa.DSAPrivateNumbers(key.x, dsa.DSAPublicNumbers(key.y, params)).private_key()
    cert = _cert(private)
    pem_public = directory / f"{name}.pub.pem"
    pem_public.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    pem_certificate = directory / f"{name}.cert.pem"
    pem_certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem_private = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    (directory / f"{name}.pem").write_text(pem_private)
    der = cert.public_bytes(serialization.Encoding.DER)
    return Signer(
        keynote_private,
        pem_private,
        read_key_file((SIGNED / f"{name}.pub").read_text()),
        "x509-base64:" + base64.b64encode(der).decode(),
        pem_public,
        pem_certificate,
    )


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rfc5708")


@pytest.fixture(scope="module")
def alice(pems: Path) -> Signer:
    return _signer("alice", pems)


@pytest.fixture(scope="module")
def dave(pems: Path) -> Signer:
    return _signer("dave", pems)


def openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


def signed_data(text: str, algorithm: str) -> bytes:
    """RFC 2792 4: the body up to and including the newline before `Signature:`, then the name."""
    return (text[: text.rindex("Signature:")] + algorithm).encode()


def raw_signature(value: str, algorithm: str) -> bytes:
    body = value[len(algorithm) :]
    if algorithm.endswith("-hex:"):
        assert body == body.lower()
        return bytes.fromhex(body)
    return base64.b64decode(body, validate=True)


def attach(text: str, value: str) -> str:
    return text + ' "' + value + '"\n'


def tampered(text: str) -> str:
    return text.replace("IPsec policy", "IPsec Policy")


def hash_of(algorithm: str) -> str:
    return algorithm.split("-")[2]


# --- the identifiers --------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", REGISTRY)
def test_every_registered_identifier_parses(algorithm: str) -> None:
    spec = sign.parse_signature_algorithm(algorithm + "00")
    assert spec.name == algorithm
    assert spec.hash_name == hash_of(algorithm)
    assert sign.parse_signature_algorithm(algorithm.upper()).name == algorithm.upper()


@pytest.mark.parametrize(
    "algorithm",
    [
        "sig-dsa-sha256-hex:",  # RFC 2792 4.1: sha1 is the only DSA hash; RFC 5708 adds none
        "sig-x509-md5-hex:",  # RFC 5708 5: sha1, sha256, sha512, ripemd160 only
        "sig-rsa-sha384-base64:",
        "sig-rsa-sha256-pem:",
        "sig-elgamal-sha1-hex:",
        "sig-pgp:",
    ],
)
def test_unregistered_identifiers_are_refused(alice: Signer, algorithm: str) -> None:
    with pytest.raises(sign.SignatureError, match="algorithm"):
        sign.parse_signature_algorithm(algorithm)
    with pytest.raises(sign.SignatureError):
        sign.sign_assertion(UNSIGNED.format(alice.principal), algorithm, alice.keynote_private)


# --- RSA: the known block, openssl's own signature over it, round trips -----------------------


@pytest.mark.parametrize("algorithm", RSA_IDS + X509_IDS)
def test_rsa_signature_is_pkcs1_type1_over_octet_string(
    alice: Signer, pems: Path, algorithm: str
) -> None:
    x509_sig = algorithm.startswith("sig-x509")
    text = UNSIGNED.format(alice.certificate if x509_sig else alice.principal)
    key_text = alice.pem_private if x509_sig else alice.keynote_private
    value = sign.sign_assertion(text, algorithm, key_text)
    assert value.startswith(algorithm)
    sig = raw_signature(value, algorithm)

    data = signed_data(text, algorithm)
    data_file = pems / "data"
    data_file.write_bytes(data)
    digest = hashlib.new(hash_of(algorithm), data).digest()
    assert openssl("dgst", "-" + hash_of(algorithm), "-binary", str(data_file)) == digest
    octet_string = bytes([0x04, len(digest)]) + digest  # RFC 2792 4.2, no DigestInfo
    block = b"\x00\x01" + b"\xff" * (128 - 3 - len(octet_string)) + b"\x00" + octet_string
    public = keys.decode_key(alice.principal)
    assert isinstance(public, keys.RSAPublicKey)
    assert pow(int.from_bytes(sig, "big"), public.e, public.n).to_bytes(128, "big") == block

    sig_file = pems / "sig"
    sig_file.write_bytes(sig)
    pad = ("-pkeyopt", "rsa_padding_mode:pkcs1")
    if x509_sig:  # back out of the signature with the certificate itself
        public_args = ("-certin", "-inkey", str(alice.pem_certificate))
    else:
        public_args = ("-pubin", "-inkey", str(alice.pem_public))
    recovered = openssl("pkeyutl", "-verifyrecover", *public_args, *pad, "-in", str(sig_file))
    assert recovered == octet_string
    # PKCS#1 v1.5 signing is deterministic: openssl must make the very same bytes.  pkeyutl
    # takes at most a hash's length (64 bytes), so the 66-byte sha512 block goes to rsautl.
    payload = pems / "payload"
    payload.write_bytes(octet_string)
    key = ("-inkey", str(pems / "alice.pem"), "-in", str(payload))
    if len(octet_string) <= 64:
        assert openssl("pkeyutl", "-sign", *key, *pad) == sig
    else:
        assert openssl("rsautl", "-sign", *key) == sig

    assert sign.verify_assertion(attach(text, value))
    assert not sign.verify_assertion(attach(tampered(text), value))


# --- DSA: sig-dsa-sha1, and sig-x509 with a certificate carrying a DSA key --------------------


@pytest.mark.parametrize("algorithm", DSA_IDS + X509_IDS)
def test_dsa_signature_is_der_r_s_over_the_digest(dave: Signer, pems: Path, algorithm: str) -> None:
    x509_sig = algorithm.startswith("sig-x509")
    text = UNSIGNED.format(dave.certificate if x509_sig else dave.principal)
    key_text = dave.pem_private if x509_sig else dave.keynote_private
    value = sign.sign_assertion(text, algorithm, key_text)
    sig = raw_signature(value, algorithm)
    r, s = utils.decode_dss_signature(sig)
    assert keys.der_int_sequence([r, s]) == sig  # RFC 2792 4.1: SEQUENCE { r, s }, DER

    digest = hashlib.new(hash_of(algorithm), signed_data(text, algorithm)).digest()
    digest_file, sig_file = pems / "digest", pems / "sig"
    digest_file.write_bytes(digest)
    sig_file.write_bytes(sig)
    out = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", str(dave.pem_public),
        "-in", str(digest_file), "-sigfile", str(sig_file),
    )  # fmt: skip
    assert b"Signature Verified Successfully" in out
    public = serialization.load_pem_public_key(dave.pem_public.read_bytes())
    assert isinstance(public, dsa.DSAPublicKey)
    size = {20: hashes.SHA1(), 32: hashes.SHA256(), 64: hashes.SHA512()}[len(digest)]
    public.verify(sig, digest, utils.Prehashed(size))

    assert sign.verify_assertion(attach(text, value))
    assert not sign.verify_assertion(attach(tampered(text), value))


def test_dsa_signature_needs_a_dsa_authorizer(alice: Signer, dave: Signer) -> None:
    text = UNSIGNED.format(alice.certificate)
    with pytest.raises(sign.SignatureError, match="Authorizer is an RSA key"):
        sign.sign_assertion(text, "sig-x509-sha256-hex:", dave.pem_private)
    value = sign.sign_assertion(
        UNSIGNED.format(dave.certificate), "sig-x509-sha256-hex:", dave.pem_private
    )
    assert not sign.verify_assertion(attach(text, value))


# --- where libkeynote differs, and forms that are not KeyNote signatures ----------------------


def _private(signer: Signer) -> rsa.RSAPrivateKey:
    private = serialization.load_pem_private_key(signer.pem_private.encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return private


def test_sig_x509_sha1_differs_from_libkeynote_which_still_verifies(
    alice: Signer, pems: Path
) -> None:
    """RFC 5708 4: sig-x509 is the RFC 2792 RSA signature, OCTET STRING(sha1) under PKCS#1.

    libkeynote signs sig-x509-sha1 with RSA_sign(NID_shaWithRSAEncryption): a DigestInfo
    naming OID 1.3.14.3.2.15.  We sign as the RFC says and accept libkeynote's form.
    """
    algorithm = "sig-x509-sha1-hex:"
    text = UNSIGNED.format(alice.certificate)
    ours = raw_signature(sign.sign_assertion(text, algorithm, alice.pem_private), algorithm)
    public = _private(alice).public_key()
    digest = hashlib.sha1(signed_data(text, algorithm)).digest()
    assert public.recover_data_from_signature(ours, padding.PKCS1v15(), None) == (
        b"\x04\x14" + digest
    )

    libkeynote_block = pems / "digestinfo"
    libkeynote_block.write_bytes(LIBKEYNOTE_X509_SHA1 + digest)
    pad = ("-pkeyopt", "rsa_padding_mode:pkcs1")
    key = ("-inkey", str(pems / "alice.pem"))
    theirs = openssl("pkeyutl", "-sign", *key, *pad, "-in", str(libkeynote_block))
    assert theirs != ours
    assert sign.verify_assertion(attach(text, algorithm + theirs.hex()))
    assert not sign.verify_assertion(attach(tampered(text), algorithm + theirs.hex()))
    # The OID 1.3.14.3.2.15 form is accepted for sha1 only, never for the RFC 5708 hashes.
    sha256 = "sig-x509-sha256-hex:"
    sha256_digest = hashlib.sha256(signed_data(text, sha256)).digest()
    libkeynote_block.write_bytes(LIBKEYNOTE_X509_SHA1[:-1] + b"\x20" + sha256_digest)
    theirs = openssl("pkeyutl", "-sign", *key, *pad, "-in", str(libkeynote_block))
    assert not sign.verify_assertion(attach(text, sha256 + theirs.hex()))


def test_libkeynote_made_x509_credential_still_verifies() -> None:
    """policies/x509-credential.cred carries a sig-x509-sha1 signature in libkeynote's form."""
    assert sign.verify_assertion((POLICIES / "x509-credential.cred").read_text())


@pytest.mark.parametrize(
    ("algorithm", "digest"),
    [
        ("sig-x509-sha1-hex:", hashes.SHA1()),
        ("sig-x509-sha256-hex:", hashes.SHA256()),
        ("sig-x509-sha512-base64:", hashes.SHA512()),
        ("sig-rsa-sha256-hex:", hashes.SHA256()),
    ],
)
def test_standard_pkcs1_digestinfo_is_not_a_keynote_signature(
    alice: Signer, algorithm: str, digest: hashes.HashAlgorithm
) -> None:
    """RSASSA-PKCS1-v1_5 with the usual DigestInfo is neither RFC 2792 nor libkeynote."""
    text = UNSIGNED.format(alice.certificate)
    raw = _private(alice).sign(signed_data(text, algorithm), padding.PKCS1v15(), digest)
    encoded = keys.encode_ascii(
        raw, keys.Encoding.HEX if algorithm.endswith("-hex:") else keys.Encoding.BASE64
    )
    assert not sign.verify_assertion(attach(text, algorithm + encoded))


@pytest.mark.parametrize(
    ("algorithm", "who", "authorizer"),
    [
        ("sig-rsa-sha256-hex:", "alice", "certificate"),
        ("sig-x509-sha512-base64:", "alice", "principal"),
        ("sig-dsa-sha1-base64:", "dave", "certificate"),
        ("sig-x509-ripemd160-hex:", "dave", "principal"),
    ],
)
def test_plain_and_x509_signatures_go_with_either_authorizer(
    alice: Signer, dave: Signer, algorithm: str, who: str, authorizer: str
) -> None:
    """RFC 5708 4: an RSA or DSA signature encoding "may be used instead" with a certificate."""
    signer = alice if who == "alice" else dave
    text = UNSIGNED.format(getattr(signer, authorizer))
    value = sign.sign_assertion(text, algorithm, signer.keynote_private)
    assert sign.verify_assertion(attach(text, value))
    other = dave if signer is alice else alice
    assert not sign.verify_assertion(attach(UNSIGNED.format(other.certificate), value))


@pytest.mark.parametrize("algorithm", ["sig-rsa-ripemd160-hex:", "sig-x509-ripemd160-base64:"])
def test_missing_ripemd160_is_a_clear_error(
    alice: Signer, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    """OpenSSL 3 may lack RIPEMD-160 (legacy provider): signing names it, verifying says no."""
    text = UNSIGNED.format(alice.certificate)
    value = sign.sign_assertion(text, algorithm, alice.keynote_private)
    assert sign.verify_assertion(attach(text, value))
    real_new = hashlib.new

    def new(name: str, data: bytes = b"") -> hashlib._Hash:
        if name == "ripemd160":
            raise ValueError(f"unsupported hash type {name}")
        return real_new(name, data)

    monkeypatch.setattr(hashlib, "new", new)
    with pytest.raises(sign.SignatureError, match="ripemd160 is not available"):
        sign.sign_assertion(text, algorithm, alice.keynote_private)
    assert not sign.verify_assertion(attach(text, value))
    assert sign.check_assertion(attach(text, value)) is sign.SigResult.FALSE


# --- the command: keynote sign -v / sigver for every identifier -------------------------------


CLI_CASES = (
    [(a, "alice") for a in RSA_IDS]
    + [(a, "dave") for a in DSA_IDS]
    + [(a, who) for a in X509_IDS for who in ("alice", "dave")]
)


@pytest.mark.parametrize(("algorithm", "who"), CLI_CASES)
def test_keynote_sign_and_sigver(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    alice: Signer,
    dave: Signer,
    pems: Path,
    algorithm: str,
    who: str,
) -> None:
    """`sign -v` (name without its colon, as the reference warns) then `sigver`, any identifier."""
    signer = alice if who == "alice" else dave
    if algorithm.startswith("sig-x509"):  # a PEM key, as libkeynote takes for sig-x509
        authorizer, key_file = signer.certificate, pems / f"{who}.pem"
    else:
        authorizer, key_file = signer.principal, SIGNED / f"{who}.priv"
    assertion = tmp_path / "assertion"
    assertion.write_text(UNSIGNED.format(authorizer) + "\n")
    status = main(["sign", "-v", algorithm[:-1], str(assertion), str(key_file)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert err.endswith("Signature verified.\n")
    assert out.startswith(" " * 12 + '"' + algorithm)
    with assertion.open("a") as f:
        f.write(out)
    assert main(["sigver", str(assertion)]) == 0
    assert capsys.readouterr().out == "Signature on assertion 0 verified.\n"
    assertion.write_text(tampered(assertion.read_text()))
    main(["sigver", str(assertion)])
    assert capsys.readouterr().out == "Signature on assertion 0 did not verify!\n"


def test_rsa_value_is_the_raw_rsa_output_as_the_reference_vectors_show(alice: Signer) -> None:
    """RFC 2792 4.2 says RSA signatures are "encoded as an ASN1 OCTET STRING object, containing
    the signature value" and names no padding.  libkeynote, by the same authors, puts the DER
    OCTET STRING of the digest under PKCS#1 type-1 padding and ASCII-encodes the bare RSA output;
    its vectors are exactly one modulus long.  A value wrapped in a further OCTET STRING (the
    other reading of that sentence) is not a signature anyone makes, and is refused."""
    vector = (SIGNED / "cred-rsa-sha1-hex").read_text()
    value = read_key_file(vector[vector.index("Signature:") + len("Signature:") :])
    assert len(raw_signature(value, "sig-rsa-sha1-hex:")) == 128  # alice's 1024-bit modulus
    assert sign.verify_assertion(vector)

    text = UNSIGNED.format(alice.principal)
    value = sign.sign_assertion(text, "sig-rsa-sha256-hex:", alice.keynote_private)
    sig = raw_signature(value, "sig-rsa-sha256-hex:")
    wrapped = "sig-rsa-sha256-hex:" + (b"\x04\x81\x80" + sig).hex()
    assert sign.verify_assertion(attach(text, value))
    assert not sign.verify_assertion(attach(text, wrapped))
