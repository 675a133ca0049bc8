"""Chains of depth 1-3, validity, revocation, identities and the failure reasons."""

from __future__ import annotations

import logging

import pytest
from cryptography import x509

from pki import (
    CertEncoding,
    Identity,
    IdType,
    PKIError,
    Reason,
    authenticate_peer,
    name_string,
    rsa_hex,
    verify_chain,
)

X = CertEncoding.X509_SIG
PEER_IP = Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 10]))


@pytest.fixture
def chain3(kit):
    """root -> int1 -> int2 -> leaf (192.0.2.10), the CA in CA-directory."""
    root = kit.cert(kit.name("Root"), kit.key(0), None, ca=True)
    int1 = kit.cert(kit.name("Intermediate 1"), kit.key(1), root, ca=True)
    int2 = kit.cert(kit.name("Intermediate 2"), kit.key(2), int1, ca=True)
    leaf = kit.cert(kit.name("192.0.2.10"), kit.key(3), int2, san=[kit.ip_san("192.0.2.10")])
    return root, int1, int2, leaf


def fail(store, payloads, now, peer=PEER_IP) -> PKIError:
    with pytest.raises(PKIError) as info:
        authenticate_peer(store, peer, payloads, now=now)
    return info.value


def test_depth_1_from_cert_payload(kit, dirs):
    root = kit.cert(kit.name("Root"), kit.key(0), None, ca=True)
    leaf = kit.cert(kit.name("192.0.2.10"), kit.key(3), root, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root)
    peer = authenticate_peer(dirs.store(), PEER_IP, [(X, leaf.der)], now=kit.NOW)
    assert peer.encoding is CertEncoding.X509_SIG
    assert peer.certificate == leaf.cert
    assert [c.subject for c in peer.chain] == [leaf.cert.subject, root.cert.subject]
    assert peer.principals == (
        rsa_hex(leaf.key.public_key()),
        "DN:/C=SE/O=Example/CN=192.0.2.10",
    )
    assert peer.public_key.public_numbers() == leaf.key.public_key().public_numbers()
    # issuer authorizes subject, by key and by DN, for the certificate's lifetime
    assert len(peer.assertions) == 2
    by_key, by_dn = peer.assertions
    assert by_key.startswith(f'Authorizer: "{rsa_hex(root.key.public_key())}"\n')
    assert f'Licensees: "{rsa_hex(leaf.key.public_key())}"\n' in by_key
    assert by_dn.splitlines()[:2] == [
        'Authorizer: "DN:/C=SE/O=Example/CN=Root"',
        'Licensees: "DN:/C=SE/O=Example/CN=192.0.2.10"',
    ]
    before = leaf.cert.not_valid_before_utc.strftime("%Y%m%d%H%M%S")
    assert f'GMTTimeOfDay >= "{before}" && GMTTimeOfDay <= "' in by_dn


def test_depth_2_intermediate_from_cert_directory(kit, dirs):
    root = kit.cert(kit.name("Root"), kit.key(0), None, ca=True)
    inter = kit.cert(kit.name("Intermediate"), kit.key(1), root, ca=True)
    leaf = kit.cert(kit.name("peer"), kit.key(3), inter, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root)
    dirs.put("certs", "inter.der", inter.der)  # DER is accepted as well as PEM
    peer = authenticate_peer(dirs.store(), PEER_IP, [(X, leaf.der)], now=kit.NOW)
    assert len(peer.chain) == 3
    assert len(peer.assertions) == 4


def test_depth_3_intermediates_from_payloads_any_order(kit, dirs, chain3):
    root, int1, int2, leaf = chain3
    dirs.ca(root)
    payloads = [(X, int1.der), (X, leaf.der), (X, int2.der)]
    peer = authenticate_peer(dirs.store(), PEER_IP, payloads, now=kit.NOW)
    assert peer.certificate == leaf.cert
    assert [name_string(c.subject) for c in peer.chain] == [
        "/C=SE/O=Example/CN=192.0.2.10",
        "/C=SE/O=Example/CN=Intermediate 2",
        "/C=SE/O=Example/CN=Intermediate 1",
        "/C=SE/O=Example/CN=Root",
    ]
    assert len(peer.assertions) == 6


def test_depth_3_missing_intermediate_is_unknown_ca(kit, dirs, chain3):
    root, _int1, int2, leaf = chain3
    dirs.ca(root)
    err = fail(dirs.store(), [(X, leaf.der), (X, int2.der)], kit.NOW)
    assert err.reason is Reason.UNKNOWN_CA
    assert "Intermediate 1" in str(err)


@pytest.mark.parametrize(
    ("shift", "reason", "word"),
    [(400, Reason.EXPIRED, "expired at"), (-40, Reason.NOT_YET_VALID, "not valid before")],
)
def test_leaf_validity(kit, dirs, root_ca, shift, reason, word):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW + shift * kit.DAY)
    assert err.reason is reason
    assert word in str(err) and "/CN=peer" in str(err)


def test_expired_intermediate(kit, dirs):
    root = kit.cert(kit.name("Root"), kit.key(0), None, ca=True)
    inter = kit.cert(
        kit.name("Old Intermediate"),
        kit.key(1),
        root,
        ca=True,
        not_after=kit.NOW - kit.DAY,
        not_before=kit.NOW - 400 * kit.DAY,
    )
    leaf = kit.cert(kit.name("peer"), kit.key(3), inter, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root)
    err = fail(dirs.store(), [(X, leaf.der), (X, inter.der)], kit.NOW)
    assert err.reason is Reason.EXPIRED
    assert "Old Intermediate" in str(err)


def test_now_as_posix_seconds(kit, dirs, root_ca):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    store = dirs.store()
    assert authenticate_peer(store, PEER_IP, [(X, leaf.der)], now=kit.NOW.timestamp()).chain
    err = fail(store, [(X, leaf.der)], (kit.NOW + 400 * kit.DAY).timestamp())
    assert err.reason is Reason.EXPIRED


def test_revoked_names_serial_and_crl(kit, dirs, root_ca, caplog):
    leaf = kit.cert(
        kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")], serial=0xBEEF
    )
    dirs.ca(root_ca)
    crl_path = dirs.crl(kit.crl(root_ca, revoked=[7, 0xBEEF]))
    caplog.set_level(logging.WARNING, logger="pki")
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.REVOKED
    assert err.serial == 0xBEEF and err.path == str(crl_path)
    line = next(r.getMessage() for r in caplog.records if "revoked" in r.getMessage())
    assert "serial 48879 (0xBEEF)" in line and str(crl_path) in line and "/CN=peer" in line


def test_not_revoked_with_fresh_crl(kit, dirs, root_ca):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    dirs.crl(kit.crl(root_ca, revoked=[7]))
    assert authenticate_peer(dirs.store(), PEER_IP, [(X, leaf.der)], now=kit.NOW).chain


def test_revoked_intermediate(kit, dirs, chain3):
    root, int1, int2, leaf = chain3
    dirs.ca(root)
    dirs.crl(kit.crl(root), "root.crl")
    dirs.crl(kit.crl(int1, revoked=[int2.cert.serial_number]), "int1.crl")
    dirs.crl(kit.crl(int2), "int2.crl")
    err = fail(dirs.store(), [(X, leaf.der), (X, int1.der), (X, int2.der)], kit.NOW)
    assert err.reason is Reason.REVOKED
    assert "Intermediate 2" in str(err) and "int1.crl" in str(err)


def test_stale_crl(kit, dirs, root_ca):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    dirs.crl(kit.crl(root_ca, last=kit.NOW - 30 * kit.DAY, next_update=kit.NOW - kit.DAY))
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.CRL_STALE
    assert "nextUpdate" in str(err) and "ca.crl" in str(err)


def test_crl_with_bad_signature(kit, dirs, root_ca):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    dirs.crl(kit.crl(root_ca, signer=kit.key(4)))
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.CRL_INVALID
    assert "signature" in str(err)


def test_crl_checking_needs_crl_for_every_issuer(kit, dirs, chain3):
    """As isakmpd (CRL_CHECK_ALL once any CRL is loaded): a CA without a CRL fails the chain."""
    root, int1, int2, leaf = chain3
    dirs.ca(root)
    dirs.crl(kit.crl(root), "root.crl")
    err = fail(dirs.store(), [(X, leaf.der), (X, int1.der), (X, int2.der)], kit.NOW)
    assert err.reason is Reason.CRL_MISSING
    assert "Intermediate" in str(err)


@pytest.mark.parametrize(
    ("peer", "reason"),
    [
        (Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 11])), Reason.ID_MISMATCH),
        (Identity(IdType.FQDN, b"other.example.org"), Reason.ID_MISMATCH),
        (Identity(IdType.USER_FQDN, b"ops@example.org"), Reason.ID_MISMATCH),
        (Identity(IdType.KEY_ID, b"peer"), Reason.UNSUPPORTED),
    ],
)
def test_wrong_id(kit, dirs, root_ca, peer, reason):
    san = [kit.ip_san("192.0.2.10"), x509.DNSName("peer.example.org")]
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=san)
    dirs.ca(root_ca)
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW, peer=peer)
    assert err.reason is reason


@pytest.mark.parametrize(
    "peer",
    [
        Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 10])),
        Identity(IdType.IPV6_ADDR, bytes.fromhex("20010db8000000000000000000000001")),
        Identity(IdType.FQDN, b"Peer.Example.ORG"),
        Identity(IdType.USER_FQDN, b"ike@EXAMPLE.org"),
    ],
)
def test_every_san_entry_matches(kit, dirs, root_ca, peer):
    san = [
        kit.ip_san("192.0.2.10"),
        kit.ip_san("2001:db8::1"),
        x509.DNSName("peer.example.org"),
        x509.RFC822Name("ike@example.org"),
    ]
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=san)
    dirs.ca(root_ca)
    assert authenticate_peer(dirs.store(), peer, [(X, leaf.der)], now=kit.NOW).chain


def test_missing_subject_alt_name(kit, dirs, root_ca):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca)
    dirs.ca(root_ca)
    store = dirs.store()
    err = fail(store, [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.NO_SUBJECT_ALT_NAME
    # a DER_ASN1_DN ID needs only the subject
    dn = Identity(IdType.DER_ASN1_DN, leaf.cert.subject.public_bytes())
    assert authenticate_peer(store, dn, [(X, leaf.der)], now=kit.NOW).chain
    wrong_dn = Identity(IdType.DER_ASN1_DN, kit.name("someone else").public_bytes())
    assert fail(store, [(X, leaf.der)], kit.NOW, peer=wrong_dn).reason is Reason.ID_MISMATCH


def test_unknown_ca(kit, dirs, root_ca):
    other = kit.cert(kit.name("Other CA"), kit.key(4), None, ca=True)
    leaf = kit.cert(kit.name("peer"), kit.key(3), other, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.UNKNOWN_CA
    assert "Other CA" in str(err)


def test_empty_ca_directory(kit, dirs, root_ca):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    assert fail(dirs.store(), [(X, leaf.der)], kit.NOW).reason is Reason.UNKNOWN_CA


def test_forged_signature(kit, dirs, root_ca):
    """Claims the real CA as issuer but is signed by another key."""
    impostor = kit.Issued(root_ca.cert, kit.key(4))
    leaf = kit.cert(kit.name("peer"), kit.key(3), impostor, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.BAD_SIGNATURE


def test_end_entity_cannot_issue(kit, dirs, root_ca):
    ee = kit.cert(kit.name("not a CA"), kit.key(1), root_ca)
    leaf = kit.cert(kit.name("peer"), kit.key(3), ee, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    err = fail(dirs.store(), [(X, leaf.der), (X, ee.der)], kit.NOW)
    assert err.reason is Reason.CHAIN_INVALID
    assert "basicConstraints" in str(err)


def test_key_usage_without_signature(kit, dirs, root_ca):
    ku = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    leaf = kit.cert(
        kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")], key_usage=ku
    )
    dirs.ca(root_ca)
    assert fail(dirs.store(), [(X, leaf.der)], kit.NOW).reason is Reason.KEY_USAGE


def test_accept_self_signed(kit, tmp_path):
    self_signed = kit.cert(kit.name("192.0.2.10"), kit.key(3), None, san=[kit.ip_san("192.0.2.10")])
    strict = kit.Dirs(tmp_path / "strict")
    err = fail(strict.store(), [(X, self_signed.der)], kit.NOW)
    assert err.reason is Reason.UNKNOWN_CA and "Accept-self-signed" in str(err)
    lax = kit.Dirs(tmp_path / "lax", accept_self_signed=True)
    peer = authenticate_peer(lax.store(), PEER_IP, [(X, self_signed.der)], now=kit.NOW)
    assert peer.chain == (self_signed.cert,)
    assert peer.assertions == ()  # self-signed: no KeyNote assertion, as x509_generate_kn


def test_peer_certificate_kept_in_cert_directory(kit, dirs, root_ca):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    dirs.put("certs", "peer.crt", leaf.pem)
    peer = authenticate_peer(dirs.store(), PEER_IP, [], now=kit.NOW)
    assert peer.source == "Cert-directory" and peer.certificate == leaf.cert


def test_garbage_payload_and_no_key(kit, dirs):
    err = fail(dirs.store(), [(X, b"\x30\x03\x02\x01\x00"), (99, b"ignored")], kit.NOW)
    assert err.reason is Reason.UNREADABLE
    err = fail(dirs.store(), [], kit.NOW)
    assert err.reason is Reason.NO_PUBLIC_KEY


def test_verify_chain_directly(kit, dirs, chain3):
    root, int1, int2, leaf = chain3
    dirs.ca(root)
    chain = verify_chain(dirs.store(), leaf.cert, [int2.cert, int1.cert], now=kit.NOW)
    assert chain[-1] == root.cert


def test_weak_ca_key_is_named(kit, dirs):
    """The man page's `openssl genrsa ... 1024` CA: cryptography's verifier refuses it."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    root = kit.cert(kit.name("Small CA"), small, None, ca=True)
    leaf = kit.cert(kit.name("peer"), kit.key(3), root, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root)
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.WEAK_KEY and "2048" in str(err)


def test_crl_not_yet_valid(kit, dirs, root_ca):
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    dirs.crl(kit.crl(root_ca, last=kit.NOW + kit.DAY, next_update=kit.NOW + 9 * kit.DAY))
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.CRL_STALE and "not valid before" in str(err)


def test_newest_crl_wins(kit, dirs, root_ca):
    """An older CRL listing the serial is superseded by a newer one that does not."""
    leaf = kit.cert(kit.name("peer"), kit.key(3), root_ca, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root_ca)
    older = kit.crl(root_ca, revoked=[leaf.cert.serial_number], last=kit.NOW - 5 * kit.DAY)
    dirs.crl(older, "old.crl")
    dirs.crl(kit.crl(root_ca, last=kit.NOW - kit.DAY), "new.crl")
    assert authenticate_peer(dirs.store(), PEER_IP, [(X, leaf.der)], now=kit.NOW).chain


def test_crl_scope_user_certs_only(kit, dirs, chain3):
    """A CRL limited to end-entity certificates does not cover an intermediate CA."""
    from cryptography.hazmat.primitives import hashes

    root, int1, int2, leaf = chain3
    dirs.ca(root)
    idp = x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    scoped = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(int1.cert.subject)
        .last_update(kit.NOW - kit.DAY)
        .next_update(kit.NOW + kit.DAY)
        .add_extension(idp, critical=True)
        .sign(int1.key, hashes.SHA256())
    )
    dirs.crl(kit.crl(root), "root.crl")
    dirs.crl(scoped, "int1-users.crl")
    dirs.crl(kit.crl(int2), "int2.crl")
    err = fail(dirs.store(), [(X, leaf.der), (X, int1.der), (X, int2.der)], kit.NOW)
    assert err.reason is Reason.CRL_MISSING and "Intermediate 2" in str(err)


def test_expired_ca(kit, dirs):
    root = kit.cert(
        kit.name("Old Root"),
        kit.key(0),
        None,
        ca=True,
        not_before=kit.NOW - 400 * kit.DAY,
        not_after=kit.NOW - kit.DAY,
    )
    leaf = kit.cert(kit.name("peer"), kit.key(3), root, san=[kit.ip_san("192.0.2.10")])
    dirs.ca(root)
    err = fail(dirs.store(), [(X, leaf.der)], kit.NOW)
    assert err.reason is Reason.EXPIRED and "Old Root" in str(err)
