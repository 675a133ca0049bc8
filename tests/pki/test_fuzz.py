"""Bad input from a peer never crashes pki: it is a PKIError or a refusal, nothing else."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pki import CertEncoding, Identity, IdType, PKIError, Store, StoreConfig, authenticate_peer
from pki.credentials import credential_key, split_assertions
from pki.ids import dn_string, id_text, identity_from_text

STORE = Store(StoreConfig(ca_directory="/nonexistent", cert_directory="/nonexistent"))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from([0, 1, 4, 11, 255]), st.binary(max_size=300)), max_size=3),
    st.sampled_from(list(IdType)),
    st.binary(max_size=40),
)
def test_authenticate_peer_refuses_garbage(payloads, id_type, id_data):
    try:
        authenticate_peer(STORE, Identity(id_type, id_data), payloads, now=1.8e9)
    except PKIError as err:
        assert str(err)
    else:
        raise AssertionError("garbage authenticated")


@SETTINGS
@given(st.binary(max_size=200))
def test_dn_string_of_garbage(data):
    try:
        assert isinstance(dn_string(data), str)
    except PKIError:
        pass
    assert isinstance(id_text(IdType.DER_ASN1_DN, data), str)


@SETTINGS
@given(st.text(max_size=300))
def test_credential_text_of_garbage(text):
    assert credential_key(split_assertions(text)) is None or text
    assert isinstance(identity_from_text(text[:40]), Identity)


def test_keynote_encoding_constant():
    assert CertEncoding.KEYNOTE == 11 and CertEncoding.X509_SIG == 4


def test_huge_der_length_is_a_pki_error():
    """pyasn1 raised OverflowError on this one (found by the test above)."""
    try:
        dn_string(b"\x02\x88\x80\x00\x00\x00\x00\x00\x00\x00")
    except PKIError as err:
        assert "malformed DER" in str(err)
    else:
        raise AssertionError("garbage printed as a DN")


def _issued_pair():
    """A CA in a store and a leaf for 192.0.2.10, built once for the mutation test."""
    import datetime as dt
    import ipaddress
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

    def cert(cn, issuer, ca):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(7)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
        )
        if ca:
            b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        else:
            ip = x509.IPAddress(ipaddress.ip_address("192.0.2.10"))
            b = b.add_extension(x509.SubjectAlternativeName([ip]), critical=False)
        return b.sign(key, hashes.SHA256())

    ca = cert("CA", x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")]), True)
    leaf = cert("peer", ca.subject, False)
    tmp = tempfile.mkdtemp(prefix="kp-fuzz-")
    with open(f"{tmp}/ca.crt", "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    store = Store.load(StoreConfig(ca_directory=tmp, cert_directory="/nonexistent"))
    return store, leaf.public_bytes(serialization.Encoding.DER), now


_PAIR: list[tuple[Store, bytes, object]] = []


@SETTINGS
@given(st.data())
def test_mutated_certificate_never_crashes(data):
    if not _PAIR:
        _PAIR.append(_issued_pair())
    store, der, now = _PAIR[0]
    peer = Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 10]))
    assert authenticate_peer(store, peer, [(4, der)], now=now).chain  # the original is fine
    pos = data.draw(st.integers(0, len(der) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != der[pos]))
    mutated = der[:pos] + bytes([new]) + der[pos + 1 :]
    try:
        authenticate_peer(store, peer, [(4, mutated)], now=now)
    except PKIError as err:
        assert str(err)
