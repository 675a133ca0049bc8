"""Signatures: the reference's vectors, byte-exact re-signing, and independent checks."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa, utils
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from keynote import keys, sign
from keynote.envfile import read_key_file

SIGNED = Path("/work/shared/vectors/keynote/signed")
EXPECTED = {
    line.split("\t")[0]: line.split("\t")[1].strip()
    for line in (SIGNED / "SIGVER.expected").read_text().splitlines()
}
PRIVATE = {"alice": "alice.priv", "carol": "carol.priv", "dave": "dave.priv"}
UNSIGNED = (
    "KeyNote-Version: 2\n"
    "Authorizer: {authorizer}\n"
    'Licensees: "bob"\n'
    'Conditions: app_domain == "IPsec policy" -> "true";\n'
    "Signature:"
)


def key_file(name: str) -> str:
    return (SIGNED / name).read_text()


def public(name: str) -> str:
    return read_key_file(key_file(name + ".pub"))


def signature_value(text: str) -> str:
    raw = text[re.search(r"(?im)^signature:", text).end() :]  # type: ignore[union-attr]
    return read_key_file(raw)


def make_unsigned(authorizer: str) -> str:
    return UNSIGNED.format(authorizer='"' + authorizer + '"')


def attach(text: str, value: str) -> str:
    return text + ' "' + value + '"\n'


def region(text: str) -> bytes:
    parsed = sign.split_assertion(text)
    assert parsed.signature_offset is not None
    return text[parsed.start : parsed.signature_offset].encode()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_vectors_verify_as_sigver_says(name: str) -> None:
    ok = EXPECTED[name].endswith(" verified.")
    assert sign.verify_assertion((SIGNED / name).read_text()) is ok


@pytest.mark.parametrize(
    ("name", "private"),
    [
        ("cred-rsa-sha1-hex", "alice.priv"),
        ("cred-rsa-md5-base64", "alice.priv"),
        ("cred-rsa-sha1-base64-carol", "carol.priv"),
    ],
)
def test_rsa_resigning_reproduces_reference_bytes(name: str, private: str) -> None:
    text = (SIGNED / name).read_text()
    expected = signature_value(text)
    algorithm = expected[: expected.index(":") + 1]
    assert sign.sign_assertion(text, algorithm, key_file(private)) == expected


@pytest.mark.parametrize("name", ["cred-rsa-sha1-hex", "cred-rsa-md5-base64"])
def test_rsa_vectors_check_independently(name: str) -> None:
    """keynote.md 3.5: the padded payload is OCTET STRING(digest), no DigestInfo."""
    text = (SIGNED / name).read_text()
    value = signature_value(text)
    algorithm, _, bits = value.partition(":")
    digest_name = "md5" if "md5" in algorithm else "sha1"
    enc = keys.Encoding.BASE64 if algorithm.endswith("base64") else keys.Encoding.HEX
    raw = keys.decode_ascii(bits, enc)
    key = keys.decode_key(public("alice"))
    assert isinstance(key, keys.RSAPublicKey)
    pub = rsa.RSAPublicNumbers(key.e, key.n).public_key()
    recovered = pub.recover_data_from_signature(raw, padding.PKCS1v15(), None)
    import hashlib

    digest = hashlib.new(digest_name, region(text) + algorithm.encode() + b":").digest()
    assert recovered == bytes([4, len(digest)]) + digest


@pytest.mark.parametrize("algorithm", ["sig-dsa-sha1-hex:", "sig-dsa-sha1-base64:"])
def test_dsa_signing_verifies_here_and_independently(algorithm: str) -> None:
    text = make_unsigned(public("dave"))
    value = sign.sign_assertion(text, algorithm, key_file("dave.priv"))
    signed = attach(text, value)
    assert sign.verify_assertion(signed)
    key = keys.decode_key(public("dave"))
    assert isinstance(key, keys.DSAPublicKey)
    params = dsa.DSAParameterNumbers(key.p, key.q, key.g)
    pub = dsa.DSAPublicNumbers(key.y, params).public_key()
    import hashlib

    digest = hashlib.sha1(region(signed) + algorithm.encode()).digest()
    enc = keys.Encoding.BASE64 if "base64" in algorithm else keys.Encoding.HEX
    der = keys.decode_ascii(value[len(algorithm) :], enc)
    pub.verify(der, digest, utils.Prehashed(hashes.SHA1()))


@pytest.mark.parametrize(
    "algorithm",
    [
        "sig-rsa-sha1-hex:",
        "sig-rsa-sha1-base64:",
        "sig-rsa-md5-hex:",
        "sig-rsa-md5-base64:",
        "sig-rsa-sha256-hex:",
        "sig-rsa-sha256-base64:",
        "sig-rsa-sha512-hex:",
        "sig-rsa-sha512-base64:",
    ],
)
@pytest.mark.parametrize("who", ["alice", "carol"])
def test_rsa_algorithms_round_trip(algorithm: str, who: str) -> None:
    text = make_unsigned(public(who))
    value = sign.sign_assertion(text, algorithm, key_file(PRIVATE[who]))
    assert value.startswith(algorithm)
    assert sign.verify_assertion(attach(text, value))
    assert not sign.verify_assertion(attach(text.replace("bob", "eve"), value))


def test_signature_by_another_key_fails() -> None:
    text = make_unsigned(public("alice"))
    value = sign.sign_assertion(text, "sig-rsa-sha1-hex:", key_file("carol.priv"))
    assert not sign.verify_assertion(attach(text, value))


def test_key_algorithm_must_match_signature_algorithm() -> None:
    text = make_unsigned(public("alice"))
    dsa_sig = sign.sign_assertion(
        make_unsigned(public("dave")), "sig-dsa-sha1-hex:", key_file("dave.priv")
    )
    assert not sign.verify_assertion(attach(text, dsa_sig))
    with pytest.raises(sign.SignatureError, match="DSA key"):
        sign.sign_assertion(text, "sig-dsa-sha1-hex:", key_file("alice.priv"))
    with pytest.raises(sign.SignatureError, match="RSA key"):
        sign.sign_assertion(text, "sig-rsa-sha1-hex:", key_file("dave.priv"))


def _libkeynote_rsa_sha1(region: bytes, name: str) -> str:
    """sig-rsa-sha1-hex over `region` + name, made by hand with alice's private exponent."""
    key = keys.decode_private_key(read_key_file(key_file("alice.priv")))
    assert isinstance(key, keys.RSAPrivateKey)
    payload = b"\x04\x14" + hashlib.sha1(region + name.encode()).digest()
    block = b"\x00\x01" + b"\xff" * (128 - 3 - len(payload)) + b"\x00" + payload
    return name + pow(int.from_bytes(block, "big"), key.d, key.n).to_bytes(128, "big").hex()


def test_signed_region_rules() -> None:
    """RFC 2704 4.6.7: from the first field name; leading blank lines and the keyword not signed."""
    unversioned = make_unsigned(public("alice")).replace("KeyNote-Version: 2\n", "")
    base = "# leading comment\n" + unversioned  # a comment line makes a version illegal
    value = sign.sign_assertion(base, "sig-rsa-sha1-hex:", key_file("alice.priv"))
    assert value == sign.sign_assertion(unversioned, "sig-rsa-sha1-hex:", key_file("alice.priv"))
    signed = attach(base, value)
    assert sign.verify_assertion(signed)
    assert sign.verify_assertion("\n  \n" + signed)
    assert sign.verify_assertion(signed.replace("# leading", "# Leading"))  # not a field
    assert sign.verify_assertion(signed.replace("Signature:", "SIGNATURE:"))
    assert not sign.verify_assertion(signed.replace("Signature:", "Sig:"))  # names are exact
    assert not sign.verify_assertion(signed.replace("Conditions:", "conditions:"))
    assert not sign.verify_assertion(signed.replace("sig-rsa-sha1-hex:", "SIG-RSA-SHA1-HEX:"))


def test_libkeynote_signed_leading_comments_still_verify() -> None:
    """keynote.md 3.4: libkeynote signs from the first non-blank byte, leading `#` lines too.

    A difference from RFC 2704 4.6.7 (signing starts at the first field): such
    signatures are accepted, and then the comment is covered.
    """
    base = "# leading comment\n" + make_unsigned(public("alice")).replace(
        "KeyNote-Version: 2\n", ""
    )
    value = _libkeynote_rsa_sha1(base[: base.rindex("Signature:")].encode(), "sig-rsa-sha1-hex:")
    assert value != sign.sign_assertion(base, "sig-rsa-sha1-hex:", key_file("alice.priv"))
    signed = attach(base, value)
    assert sign.verify_assertion(signed)
    assert sign.verify_assertion("\n  \n" + signed)
    assert not sign.verify_assertion(signed.replace("# leading", "# Leading"))
    assert not sign.verify_assertion(signed.replace("Conditions:", "conditions:"))


def test_signature_algorithm_case_is_hashed_as_written() -> None:
    text = make_unsigned(public("alice"))
    value = sign.sign_assertion(text, "SIG-RSA-SHA1-HEX:", key_file("alice.priv"))
    assert value.startswith("SIG-RSA-SHA1-HEX:")
    assert sign.verify_assertion(attach(text, value))


def test_signature_and_authorizer_may_use_local_constants() -> None:
    text = (
        "Authorizer: ALICE\n"
        f'Local-Constants: ALICE = "{public("alice")}"  # the key\n'
        '    SIG = "sig-rsa-"\n'
        'Conditions: true -> "true";\n'
        "Signature: "
    )
    value = sign.sign_assertion(text, "sig-rsa-sha1-hex:", key_file("alice.priv"))
    tail = value[len("sig-rsa-") :]
    assert sign.verify_assertion(text + f'SIG . "{tail}"\n')
    assert sign.verify_assertion(text + f'$"SIG" . "{tail}"\n')


def test_unsigned_and_malformed_assertions_do_not_verify() -> None:
    text = make_unsigned(public("alice"))
    assert sign.check_assertion(text.replace("Signature:", "")) is sign.SigResult.FALSE
    assert not sign.verify_assertion(text + '"sig-rsa-sha1-hex:zz"\n')
    assert not sign.verify_assertion(text + '"sig-foo-sha1-hex:00"\n')
    assert not sign.verify_assertion(text + '"sig-dsa-md5-hex:00"\n')
    assert not sign.verify_assertion(text + '"nocolon"\n')
    assert not sign.verify_assertion(text + '"sig-rsa-sha1-hex:00"\n')
    assert not sign.verify_assertion(text + '"sig-rsa-sha1-hex:' + "ff" * 128 + '"\n')
    assert not sign.verify_assertion(text + '"sig-dsa-sha1-hex:3006020101020101"\n')
    assert not sign.verify_assertion(text + "(\n")
    assert not sign.verify_assertion(text + '"unterminated\n')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ('  Authorizer: "x"\n', "beginning of a line"),
        ('Authorizer: "x"\nBogus: 1\n', "unknown field"),
        ('Authorizer: "x"\nAuthorizer: "y"\n', "duplicate"),
        ('Comment: x\nLicensees: "y"\n', "missing Authorizer"),
        ('Authorizer: "x"\nSignature: "s"\nComment: x\n', "last field"),
        ('Authorizer: "x"\nno colon here\n', "field name"),
    ],
)
def test_structure_errors(text: str, message: str) -> None:
    with pytest.raises(sign.SignatureError, match=message):
        sign.check_assertion(text)
    assert not sign.verify_assertion(text)


def test_assertion_ends_at_blank_line() -> None:
    text = make_unsigned(public("alice"))
    value = sign.sign_assertion(text, "sig-rsa-sha1-hex:", key_file("alice.priv"))
    assert sign.verify_assertion(attach(text, value) + "\ngarbage that is not a field\n")
    assert sign.verify_assertion(attach(text, value).rstrip("\n"))


def test_signing_errors() -> None:
    text = make_unsigned(public("alice"))
    with pytest.raises(sign.SignatureError, match="no Signature"):
        sign.sign_assertion(
            text.replace("Signature:", ""), "sig-rsa-sha1-hex:", key_file("alice.priv")
        )
    with pytest.raises(sign.SignatureError, match="end with"):
        sign.sign_assertion(text, "sig-rsa-sha1-hex", key_file("alice.priv"))
    with pytest.raises(sign.SignatureError, match="unknown"):
        sign.sign_assertion(text, "sig-rsa-sha1-oct:", key_file("alice.priv"))
    with pytest.raises(sign.SignatureError, match="after the algorithm"):
        sign.sign_assertion(text, "sig-rsa-sha1-hex:00", key_file("alice.priv"))
    with pytest.raises(sign.SignatureError, match="private"):
        sign.sign_assertion(text, "sig-rsa-sha1-hex:", key_file("alice.pub"))
    with pytest.raises(sign.SignatureError):
        sign.sign_assertion(text, "sig-rsa-sha1-hex:", '"unterminated')


def test_bare_private_key_string_is_accepted() -> None:
    text = make_unsigned(public("alice"))
    bare = read_key_file(key_file("alice.priv"))
    assert sign.sign_assertion(text, "sig-rsa-sha1-hex:", bare) == sign.sign_assertion(
        text, "sig-rsa-sha1-hex:", key_file("alice.priv")
    )


def _cert_and_pem() -> tuple[str, str, rsa.RSAPrivateKey]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BenCo CA")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return "x509-base64:" + base64.b64encode(der).decode(), pem, private


def test_x509_signatures() -> None:
    """RFC 5708 4: sig-x509 is the RFC 2792 RSA signature, PKCS#1 type 1 over OCTET STRING(hash)."""
    cert, pem, private = _cert_and_pem()
    text = make_unsigned(cert)
    for algorithm in ("sig-x509-sha1-base64:", "sig-x509-sha256-hex:", "sig-x509-sha512-base64:"):
        value = sign.sign_assertion(text, algorithm, pem)
        assert sign.verify_assertion(attach(text, value))
        enc = keys.Encoding.BASE64 if algorithm.endswith("base64:") else keys.Encoding.HEX
        raw = keys.decode_ascii(value[len(algorithm) :], enc)
        data = region(attach(text, value)) + algorithm.encode()
        hash_name = algorithm.split("-")[2]
        digest = getattr(hashes, hash_name.upper())()
        h = hashes.Hash(digest)
        h.update(data)
        recovered = private.public_key().recover_data_from_signature(raw, padding.PKCS1v15(), None)
        assert recovered == bytes([0x04, digest.digest_size]) + h.finalize()


def test_x509_signature_verifies_against_rsa_key_authorizer() -> None:
    cert, pem, _ = _cert_and_pem()
    text = make_unsigned(keys.canonical_principal(cert))
    value = sign.sign_assertion(text, "sig-x509-sha1-hex:", pem)
    assert sign.verify_assertion(attach(text, value))
    with pytest.raises(sign.SignatureError, match="private"):
        sign.sign_assertion(text, "sig-rsa-sha1-hex:", pem)  # PEM keys only for sig-x509


def _pkcs8_pem(private: dsa.DSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_x509_signing_needs_a_pem_key_of_the_authorizers_family() -> None:
    cert, _, _ = _cert_and_pem()
    text = make_unsigned(cert)
    with pytest.raises(sign.SignatureError, match="PEM"):
        sign.sign_assertion(text, "sig-x509-sha1-hex:", "-----BEGIN RSA PRIVATE KEY-----\nxx\n")
    dsa_pem = _pkcs8_pem(dsa.generate_private_key(1024))
    with pytest.raises(sign.SignatureError, match="Authorizer is an RSA key"):
        sign.sign_assertion(text, "sig-x509-sha1-hex:", dsa_pem)
    ec_pem = _pkcs8_pem(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(sign.SignatureError, match="RSA or DSA private key"):
        sign.sign_assertion(text, "sig-x509-sha1-hex:", ec_pem)


def test_x509_signature_with_keynote_private_key() -> None:
    text = make_unsigned(public("alice"))
    value = sign.sign_assertion(text, "sig-x509-sha256-hex:", key_file("alice.priv"))
    assert sign.verify_assertion(attach(text, value))


def test_unusable_private_keys_are_signature_errors() -> None:
    text = make_unsigned(public("dave"))
    bad_dsa = keys.encode_private_key(keys.DSAPrivateKey(p=23, q=11, g=4, y=3, x=5))
    with pytest.raises(sign.SignatureError, match="DSA private key"):
        sign.sign_assertion(text, "sig-dsa-sha1-hex:", bad_dsa)
    text = make_unsigned(public("alice"))
    bad_rsa = keys.encode_private_key(keys.RSAPrivateKey(3233, 17, 2753, 61, 53, 53, 49, 38))
    with pytest.raises(sign.SignatureError, match="too small"):
        sign.sign_assertion(text, "sig-rsa-sha1-hex:", bad_rsa)
    inconsistent = keys.decode_private_key(read_key_file(key_file("alice.priv")))
    assert isinstance(inconsistent, keys.RSAPrivateKey)
    broken = dataclasses.replace(inconsistent, qinv=12345)
    with pytest.raises(sign.SignatureError, match="inconsistent"):
        sign.sign_assertion(text, "sig-rsa-sha1-hex:", keys.encode_private_key(broken))


def test_broken_dsa_key_does_not_verify() -> None:
    """A composite q makes s non-invertible: an answer, not an exception."""
    principal = keys.encode_key(keys.DSAPublicKey(y=3, p=23, q=4, g=2))
    text = make_unsigned(principal)
    sig = "sig-dsa-sha1-hex:" + keys.der_int_sequence([1, 2]).hex()
    assert not sign.verify_assertion(attach(text, sig))


@given(
    ints=st.lists(st.integers(min_value=1, max_value=2**200), min_size=2, max_size=4),
    sig=st.binary(max_size=64),
    algorithm=st.sampled_from(["sig-rsa-sha1-hex:", "sig-dsa-sha1-hex:", "sig-x509-sha256-hex:"]),
    der_sig=st.booleans(),
)
def test_any_key_and_signature_give_true_or_false(
    ints: list[int], sig: bytes, algorithm: str, der_sig: bool
) -> None:
    if len(ints) == 4:
        principal = keys.encode_key(keys.DSAPublicKey(*ints))
    else:
        principal = keys.encode_key(keys.RSAPublicKey(ints[0], ints[1]))
    if der_sig:
        sig = keys.der_int_sequence([int.from_bytes(sig or b"\x01", "big"), ints[0]])
    assert sign.verify_signature(b"data", algorithm + sig.hex(), principal) in (True, False)


def test_deep_dereference_chains_are_safe() -> None:
    text = make_unsigned(public("alice")).replace("Signature:", "Signature: " + "$" * 100_000 + "x")
    assert not sign.verify_assertion(text)
    assert sign.check_assertion(text) is sign.SigResult.FALSE


@given(st.text(max_size=400))
def test_any_text_gives_a_result_or_signature_error(text: str) -> None:
    try:
        assert sign.check_assertion(text) in (sign.SigResult.TRUE, sign.SigResult.FALSE)
    except sign.SignatureError:
        pass
    assert sign.verify_assertion(text) in (True, False)
