"""Bad input from a peer never crashes pki: it is a PKIError or a refusal, nothing else."""

from __future__ import annotations

import pytest
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


@pytest.fixture(scope="module")
def signed(kit, tmp_path_factory):
    """A store with one CA and a good leaf certificate for 192.0.2.10."""
    root = kit.cert(kit.name("CA"), kit.key(0), None, ca=True)
    leaf = kit.cert(kit.name("peer"), kit.key(3), root, san=[kit.ip_san("192.0.2.10")])
    d = kit.Dirs(tmp_path_factory.mktemp("fuzz"))
    d.ca(root)
    return d.store(), leaf.der, kit.NOW


@SETTINGS
@given(data=st.data())
def test_mutated_certificate_never_crashes(signed, data):
    store, der, now = signed
    peer = Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 10]))
    assert authenticate_peer(store, peer, [(4, der)], now=now).chain  # the original is fine
    pos = data.draw(st.integers(0, len(der) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != der[pos]))
    mutated = der[:pos] + bytes([new]) + der[pos + 1 :]
    try:
        authenticate_peer(store, peer, [(4, mutated)], now=now)
    except PKIError as err:
        assert str(err)
