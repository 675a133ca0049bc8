"""X.509 chains, CRLs and raw public keys for IKE authentication (imports nothing from ike).

store = Store.load(StoreConfig.from_conf(conf))       # ca/ certs/ crls/ private/ pubkeys/
peer = authenticate_peer(store, Identity(id_type, id_data), cert_payloads, now=now)
peer.public_key                                       # checks the peer's SIG payload
peer.prime(session)                                   # KeyNote principals and assertions
"""

from pki.auth import PKIAuth
from pki.credentials import (
    certificate_principals,
    chain_assertions,
    prime_session,
    rsa_hex,
    verify_credentials,
)
from pki.errors import PKIError, Reason
from pki.ids import Identity, IdType, check_identity, dn_string, name_string
from pki.store import OwnCertificate, Store, StoreConfig
from pki.verify import CertEncoding, PeerKey, authenticate_peer, check_revocation, verify_chain

__all__ = [
    "CertEncoding",
    "IdType",
    "Identity",
    "OwnCertificate",
    "PKIAuth",
    "PKIError",
    "PeerKey",
    "Reason",
    "Store",
    "StoreConfig",
    "authenticate_peer",
    "certificate_principals",
    "chain_assertions",
    "check_identity",
    "check_revocation",
    "dn_string",
    "name_string",
    "prime_session",
    "rsa_hex",
    "verify_chain",
    "verify_credentials",
]
