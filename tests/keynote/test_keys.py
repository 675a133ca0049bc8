"""Principals: decoding, canonical comparison and the reference's key text layout."""

from __future__ import annotations

import base64
import datetime
import functools
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from keynote import keys
from keynote.envfile import read_key_file

SIGNED = Path("/work/shared/vectors/keynote/signed")
TESTSUITE = Path("/work/shared/vectors/keynote/testsuite")


def key_string(name: str) -> str:
    return read_key_file((SIGNED / name).read_text(), name)


def to_base64(principal: str) -> str:
    alg, _, body = principal.partition(":")
    return alg.replace("-hex", "-base64") + ":" + base64.b64encode(bytes.fromhex(body)).decode()


def self_signed_cert(
    private: rsa.RSAPrivateKey | dsa.DSAPrivateKey | ec.EllipticCurvePrivateKey,
) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA Certificate")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def alice_private() -> rsa.RSAPrivateKey:
    key = keys.decode_private_key(key_string("alice.priv"))
    assert isinstance(key, keys.RSAPrivateKey)
    return rsa.RSAPrivateNumbers(
        key.p, key.q, key.d, key.dp, key.dq, key.qinv, rsa.RSAPublicNumbers(key.e, key.n)
    ).private_key()


@pytest.mark.parametrize("name", ["alice.pub", "carol.pub", "dave.pub"])
def test_vector_public_keys_decode(name: str) -> None:
    key = keys.decode_key(key_string(name))
    expected = keys.DSAPublicKey if name == "dave.pub" else keys.RSAPublicKey
    assert isinstance(key, expected)


@pytest.mark.parametrize(
    "name", ["alice.pub", "carol.pub", "dave.pub", "alice.priv", "carol.priv", "dave.priv"]
)
def test_layout_matches_reference_keygen_output(name: str) -> None:
    text = key_string(name)
    alg, _, body = text.partition(":")
    assert keys.layout_key(alg + ":", body) == (SIGNED / name).read_text()


def test_layout_lines_are_62_characters() -> None:
    out = keys.layout_key("rsa-hex:", "a" * 300)
    lines = out.splitlines()
    assert all(len(line) == 62 for line in lines[:-1])
    assert lines[0] == " " * 12 + '"rsa-hex:' + "a" * 40 + "\\"


def test_layout_exact_fit_closes_quote_on_same_line() -> None:
    assert keys.layout_key("", "x" * 48) == " " * 12 + '"' + "x" * 48 + '"\n'
    assert keys.layout_key("", "x" * 49).endswith("\\\n" + " " * 12 + 'x"\n')


@pytest.mark.parametrize("name", ["alice.pub", "carol.pub", "dave.pub"])
def test_hex_and_base64_are_one_principal(name: str) -> None:
    text = key_string(name)
    key = keys.decode_key(text)
    assert key is not None
    hex_form = keys.encode_key(key, keys.Encoding.HEX)
    b64_form = keys.encode_key(key, keys.Encoding.BASE64)
    assert hex_form != b64_form
    assert keys.canonical_principal(hex_form) == keys.canonical_principal(b64_form)
    assert keys.canonical_principal(text) == keys.canonical_principal(to_base64(hex_form))


def test_prefix_and_hex_digits_are_case_insensitive() -> None:
    text = key_string("alice.pub")
    alg, _, body = text.partition(":")
    shouty = alg.upper() + ":" + body.upper()
    assert keys.canonical_principal(shouty) == keys.canonical_principal(text)


def test_x509_certificate_equals_the_rsa_key_it_carries() -> None:
    der = self_signed_cert(alice_private())
    for cert in ("x509-hex:" + der.hex(), "x509-base64:" + base64.b64encode(der).decode()):
        assert keys.canonical_principal(cert) == keys.canonical_principal(key_string("alice.pub"))
    assert keys.canonical_principal("x509-hex:" + der.hex()) != keys.canonical_principal(
        key_string("carol.pub")
    )


def test_x509_certificate_equals_the_dsa_key_it_carries() -> None:
    """RFC 5708 3: the subject key, RSA or DSA, in its RFC 2792 normalized form.

    Difference from libkeynote, which takes only RSA keys from certificates
    (`X509_get_pubkey` then `pkey.rsa`, "RSA-specific").
    """
    key = keys.decode_private_key(key_string("dave.priv"))
    assert isinstance(key, keys.DSAPrivateKey)
    params = dsa.DSAParameterNumbers(key.p, key.q, key.g)
    private = dsa.DSAPrivateNumbers(key.x, dsa.DSAPublicNumbers(key.y, params)).private_key()
    der = self_signed_cert(private)
    for cert in ("x509-hex:" + der.hex(), "x509-base64:" + base64.b64encode(der).decode()):
        assert keys.decode_key(cert) == key.public()
        assert keys.canonical_principal(cert) == keys.canonical_principal(key_string("dave.pub"))
    assert keys.canonical_principal("x509-hex:" + der.hex()).startswith("dsa-hex:")


def test_x509_certificate_with_neither_rsa_nor_dsa_key_is_an_error() -> None:
    der = self_signed_cert(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(keys.KeyFormatError, match="neither an RSA nor a DSA key"):
        keys.canonical_principal("x509-hex:" + der.hex())


def test_x509_garbage_is_an_error() -> None:
    with pytest.raises(keys.KeyFormatError, match="X\\.509"):
        keys.decode_key("x509-hex:300302010a")


def test_testsuite_dsa_authorizer_decodes() -> None:
    text = read_key_file((TESTSUITE / "auth4").read_text())
    key = keys.decode_key(text)
    assert isinstance(key, keys.DSAPublicKey)
    assert key.p.bit_length() == 512
    assert keys.canonical_principal(text) == text  # already lowercase minimal DER hex


@pytest.mark.parametrize(
    "text", ["POLICY", "KeyC", "passphrase:mekmitasdigoat", "DN:/CN=x", "dsa:1234", "DSA:1234", ""]
)
def test_opaque_strings_are_unchanged(text: str) -> None:
    assert keys.canonical_principal(text) == text
    assert not keys.is_key(text)


def test_opaque_comparison_is_case_sensitive() -> None:
    assert keys.canonical_principal("DSA:1234") != keys.canonical_principal("dsa:1234")


def test_binary_keys_compare_by_bytes() -> None:
    assert keys.canonical_principal("binary-hex:00FF10") == keys.canonical_principal(
        "binary-base64:AP8Q"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rsa-hex:zz", "hex"),
        ("rsa-hex:abc", "odd"),
        ("rsa-base64:!!!!", "base64"),
        ("rsa-hex:3006020101020101" + "00", "trailing"),
        ("rsa-hex:3009020101020101020101", "RSA key"),
        ("dsa-hex:3006020101020101", "DSA key"),
        ("rsa-hex:0406020101020101", "SEQUENCE"),
        ("rsa-hex:3006040101020101", "INTEGER"),
        ("rsa-hex:30", "truncated"),
        ("rsa-hex:3080", "length"),
        ("rsa-hex:30ff", "length"),
        ("rsa-hex:3006020101", "past the end"),
        ("rsa-hex:", "truncated"),
    ],
)
def test_malformed_keys_raise(text: str, message: str) -> None:
    with pytest.raises(keys.KeyFormatError, match=message):
        keys.canonical_principal(text)


def test_private_keys_round_trip() -> None:
    for name, enc in [
        ("alice.priv", keys.Encoding.HEX),
        ("carol.priv", keys.Encoding.BASE64),
        ("dave.priv", keys.Encoding.HEX),
    ]:
        text = key_string(name)
        assert keys.encode_private_key(keys.decode_private_key(text), enc) == text


def test_private_key_matches_public_key() -> None:
    for priv, pub in [("alice.priv", "alice.pub"), ("dave.priv", "dave.pub")]:
        private = keys.decode_private_key(key_string(priv))
        assert keys.encode_key(private.public()) == key_string(pub)


@pytest.mark.parametrize(
    "text",
    ["rsa-hex:3006020101020101", "private-rsa-hex:3006020101020101", "private-dsa-hex:3003020100"],
)
def test_bad_private_keys_raise(text: str) -> None:
    with pytest.raises(keys.KeyFormatError):
        keys.decode_private_key(text)


@given(st.lists(st.integers(min_value=-(2**2100), max_value=2**2100), max_size=8))
def test_der_integer_sequences_round_trip(values: list[int]) -> None:
    assert keys.parse_der_int_sequence(keys.der_int_sequence(values)) == values


@given(st.text(max_size=200))
def test_any_principal_text_gives_a_string_or_key_error(text: str) -> None:
    try:
        assert isinstance(keys.canonical_principal(text), str)
    except keys.KeyFormatError:
        assert keys.is_key(text)


@given(st.binary(max_size=300))
def test_any_der_bytes_give_a_key_or_key_error(data: bytes) -> None:
    for prefix, kind in (("rsa-hex:", keys.RSAPublicKey), ("dsa-hex:", keys.DSAPublicKey)):
        try:
            key = keys.decode_key(prefix + data.hex())
        except keys.KeyFormatError:
            continue
        assert isinstance(key, kind)


@functools.cache
def alice_certificate() -> bytes:
    return self_signed_cert(alice_private())


@given(st.data())
def test_damaged_certificates_give_a_key_or_key_error(data: st.DataObject) -> None:
    der = bytearray(alice_certificate())
    for _ in range(data.draw(st.integers(1, 4))):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(der)))
    try:
        key = keys.decode_key("x509-hex:" + bytes(der[:cut]).hex())
    except keys.KeyFormatError:
        return
    assert isinstance(key, keys.RSAPublicKey)
