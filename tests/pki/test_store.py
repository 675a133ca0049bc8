"""Loading the directories, key files and their secrecy, raw keys and our own certificate."""

from __future__ import annotations

import builtins
import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki import Identity, IdType, PKIError, Reason, Store, StoreConfig, authenticate_peer
from pki.credentials import rsa_hex

IPV6 = bytes.fromhex("20010db8000000000000000000000001")

RAW_IDS = [
    (Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 10])), "ipv4/192.0.2.10"),
    (Identity(IdType.IPV6_ADDR, IPV6), "ipv6/2001:db8::1"),
    (Identity(IdType.FQDN, b"peer.example.org"), "fqdn/peer.example.org"),
    (Identity(IdType.USER_FQDN, b"ike@example.org"), "ufqdn/ike@example.org"),
]


def public_pem(k, fmt=serialization.PublicFormat.SubjectPublicKeyInfo) -> bytes:
    return k.public_key().public_bytes(serialization.Encoding.PEM, fmt)


def test_loads_pem_der_and_bundles(kit, dirs, root_ca):
    inter = kit.cert(kit.name("Intermediate"), kit.key(1), root_ca, ca=True)
    dirs.put("ca", "bundle.pem", root_ca.pem + inter.pem)
    dirs.put("certs", "peer.der", kit.cert(kit.name("peer"), kit.key(3), inter).der)
    dirs.crl(kit.crl(root_ca))
    der_crl = kit.crl(inter).public_bytes(serialization.Encoding.DER)
    dirs.put("crls", "inter.crl", der_crl)
    (dirs.root / "certs" / "subdir").mkdir()
    store = dirs.store()
    assert len(store.cas) == 2 and len(store.certs) == 1 and len(store.crls) == 2
    assert store.problems == []


def test_unreadable_files_reported_with_path_and_skipped(kit, dirs, root_ca, caplog, monkeypatch):
    dirs.ca(root_ca)
    junk = dirs.put("ca", "junk.crt", b"not a certificate")
    bad_crl = dirs.put(
        "crls", "bad.crl", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    )
    locked = dirs.put("certs", "locked.crt", root_ca.pem)
    real_open = builtins.open

    def deny(path, *args, **kwargs):  # root ignores modes, so refuse this one file by hand
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    caplog.set_level(logging.WARNING, logger="pki")
    store = dirs.store()
    assert len(store.cas) == 1 and store.certs == [] and store.crls == []
    text = "\n".join(store.problems)
    assert f"{junk}: not a PEM or DER certificate" in text
    assert f"{bad_crl}: not a PEM or DER CRL" in text
    assert f"{locked}: cannot read: Permission denied" in text
    assert len(caplog.records) == 3


def test_reload_sees_new_files(kit, dirs, root_ca):
    store = dirs.store()
    assert store.cas == [] and store.certreq_authorities() == []
    dirs.ca(root_ca)
    dirs.ca(root_ca, "again.crt")  # the same CA twice is named once in CERTREQ
    assert store.reload() == []
    assert store.certreq_authorities() == [root_ca.cert.subject.public_bytes()]


class FakeConf:
    """The get_str part of ike.conf.Conf."""

    def __init__(self, values):
        self.values = values

    def get_str(self, section, tag, default=None):
        return self.values.get((section, tag), default)


def test_config_from_isakmpd_conf():
    conf = FakeConf(
        {
            ("X509-Certificates", "CA-directory"): "/x/ca/",
            ("X509-Certificates", "Private-key"): "/x/local.key",
            ("X509-Certificates", "Accept-self-signed"): "",
            ("General", "Pubkey-directory"): "/x/pubkeys/",
            ("KeyNote", "Credential-directory"): "/x/keynote/",
        }
    )
    cfg = StoreConfig.from_conf(conf)
    assert cfg.ca_directory == "/x/ca/" and cfg.cert_directory == "/etc/isakmpd/certs/"
    assert cfg.private_key == "/x/local.key" and cfg.accept_self_signed
    assert cfg.pubkey_directory == "/x/pubkeys/" and cfg.credential_directory == "/x/keynote/"
    assert StoreConfig.from_conf(FakeConf({})) == StoreConfig()


@pytest.mark.parametrize(("peer", "relpath"), RAW_IDS)
@pytest.mark.parametrize("fmt", ["spki", "pkcs1"])
def test_raw_public_key_for_each_id_type(kit, dirs, peer, relpath, fmt):
    pub_fmt = {
        "spki": serialization.PublicFormat.SubjectPublicKeyInfo,
        "pkcs1": serialization.PublicFormat.PKCS1,
    }[fmt]
    dirs.put("pubkeys", relpath, public_pem(kit.key(5), pub_fmt))
    store = dirs.store()
    found = authenticate_peer(store, peer, [], now=kit.NOW)
    assert found.source == "Pubkey-directory"
    assert found.principals == (rsa_hex(kit.key(5).public_key()),)
    # another ID of the same type has no file
    other = Identity(peer.id_type, peer.data[:-1] + bytes([peer.data[-1] ^ 1]))
    with pytest.raises(PKIError) as info:
        authenticate_peer(store, other, [], now=kit.NOW)
    assert info.value.reason is Reason.NO_PUBLIC_KEY


def test_ipv6_file_must_be_compressed(kit, dirs, caplog):
    dirs.put("pubkeys", "ipv6/2001:0db8:0000:0000:0000:0000:0000:0001", public_pem(kit.key(5)))
    caplog.set_level(logging.WARNING, logger="pki")
    assert dirs.store().raw_public_key(Identity(IdType.IPV6_ADDR, IPV6)) is None
    assert "rename it to" in caplog.text and "ipv6/2001:db8::1" in caplog.text


@pytest.mark.parametrize("name", [b"../etc/passwd", b"a/b", b".hidden", b""])
def test_peer_names_cannot_leave_the_directory(dirs, name):
    assert dirs.store().raw_public_key(Identity(IdType.FQDN, name)) is None


def test_bad_raw_key_file_names_path(kit, dirs):
    path = dirs.put("pubkeys", "fqdn/peer.example.org", b"garbage")
    with pytest.raises(PKIError) as info:
        authenticate_peer(dirs.store(), Identity(IdType.FQDN, b"peer.example.org"), [], now=kit.NOW)
    assert info.value.reason is Reason.UNREADABLE and str(path) in str(info.value)


def test_private_key_secrecy(kit, dirs):
    path = dirs.private_key(kit.key(3), mode=0o644)
    store = dirs.store()
    with pytest.raises(PKIError) as info:
        store.private_key()
    assert info.value.reason is Reason.INSECURE_FILE
    assert str(path) in str(info.value) and "0644" in str(info.value)
    path.chmod(0o640)
    with pytest.raises(PKIError):
        store.private_key()
    path.chmod(0o600)
    assert store.private_key().private_numbers() == kit.key(3).private_numbers()


def test_private_key_lookup_order(kit, dirs):
    local = Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 1]))
    store = dirs.store()
    with pytest.raises(PKIError) as info:
        store.private_key(local)
    assert info.value.reason is Reason.NO_PRIVATE_KEY
    dirs.private_key(kit.key(1))
    assert store.private_key(local).public_key() == kit.key(1).public_key()
    dirs.private_key(kit.key(2), "192.0.2.1")  # Private-key-directory/<id> comes first
    assert store.private_key(local).public_key() == kit.key(2).public_key()
    assert store.private_key().public_key() == kit.key(1).public_key()


def test_keynote_private_key_comes_first(kit, dirs):
    from keynote import keys as kn_keys

    n = kit.key(4).private_numbers()
    pub = n.public_numbers
    text = kn_keys.encode_private_key(
        kn_keys.RSAPrivateKey(pub.n, pub.e, n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp)
    )
    laid_out = kn_keys.layout_key("", text) + "\n"
    local = Identity(IdType.FQDN, b"gw.example.org")
    dirs.private_key(kit.key(1))
    dirs.put("keynote", "gw.example.org/private_key", laid_out.encode(), 0o600)
    assert dirs.store().private_key(local).public_key() == kit.key(4).public_key()
    dirs.put("keynote", "gw.example.org/private_key", b'"private-rsa-hex:zz"\n', 0o600)
    with pytest.raises(PKIError) as info:
        dirs.store().private_key(local)
    assert info.value.reason is Reason.UNREADABLE


def test_own_certificate_follows_certreq(kit, dirs, root_ca):
    """Two certificates for our ID from different CAs: the peer's CERTREQ picks one."""
    other_ca = kit.cert(kit.name("Other CA"), kit.key(4), None, ca=True)
    inter = kit.cert(kit.name("Other Intermediate"), kit.key(5), other_ca, ca=True)
    san = [kit.ip_san("192.0.2.1")]
    mine_a = kit.cert(kit.name("gw a"), kit.key(3), root_ca, san=san)
    mine_b = kit.cert(kit.name("gw b"), kit.key(3), inter, san=san)
    stranger = kit.cert(kit.name("gw c"), kit.key(2), root_ca, san=san)  # not our key
    dirs.ca(root_ca)
    dirs.ca(other_ca, "other.crt")
    dirs.put("certs", "a.crt", mine_a.pem)
    dirs.put("certs", "b.crt", mine_b.pem)
    dirs.put("certs", "c.crt", stranger.pem)
    dirs.put("certs", "inter.crt", inter.pem)
    store = dirs.store()
    local = Identity(IdType.IPV4_ADDR, bytes([192, 0, 2, 1]))
    key = kit.key(3)
    want_other = store.own_certificate(local, [other_ca.cert.subject.public_bytes()], key)
    assert want_other is not None and want_other.cert == mine_b.cert
    assert want_other.intermediates == (inter.cert,)
    assert want_other.payloads() == [mine_b.der, inter.der]
    want_root = store.own_certificate(local, [root_ca.cert.subject.public_bytes()], key)
    assert want_root is not None and want_root.cert == mine_a.cert
    assert want_root.intermediates == ()
    anyone = store.own_certificate(local, [b""], key)
    assert anyone is not None and anyone.cert in (mine_a.cert, mine_b.cert)
    unknown = kit.name("Nobody").public_bytes()
    assert store.own_certificate(local, [unknown], key) is not None  # falls back, logged
    assert store.own_certificate(Identity(IdType.FQDN, b"nope"), [], key) is None


def test_identity_text_forms(kit):
    from pki.ids import id_text, pubkey_relpath

    assert id_text(IdType.IPV6_ADDR, bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])) == (
        "::ffff:10.0.0.1"
    )
    assert pubkey_relpath(IdType.DER_ASN1_DN, kit.name("x").public_bytes()) is None
    assert str(Identity(IdType.FQDN, b"a.example")) == "FQDN a.example"
    assert id_text(IdType.DER_ASN1_DN, b"\x30\x03garbage") == b"\x30\x03garbage".hex()
    assert isinstance(x509.DNSName("x"), x509.GeneralName)


def test_store_is_independent(kit, tmp_path):
    cfg = StoreConfig(ca_directory=str(tmp_path / "missing"), cert_directory=str(tmp_path))
    store = Store.load(cfg)
    assert store.cas == [] and store.problems == []


def test_private_key_parsed_once_per_content(kit, dirs):
    # Each Phase 1 with signatures asks twice; parsing (cryptography checks the key) is slow.
    path = dirs.private_key(kit.key(3))
    store = dirs.store()
    first = store.private_key()
    assert store.private_key() is first
    path.chmod(0o644)  # the file's secrecy is still checked on every use
    with pytest.raises(PKIError) as info:
        store.private_key()
    assert info.value.reason is Reason.INSECURE_FILE
    dirs.private_key(kit.key(1))  # a new key in the same file is seen without a reload
    path.chmod(0o600)
    assert store.private_key().public_key() == kit.key(1).public_key()
