"""The pki Store behind the engine's key source (the AuthSource protocol of ike/auth.py).

The engine signs and verifies (ike.crypto.rsa); this class finds the keys. Its exact API takes
the Phase 1 ID as type and data and the engine's `now`; the AuthSource methods, which get only
the ID's text and no time, are kept for the engine as it is and read the time from `clock`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric import rsa

from pki.errors import PKIError
from pki.ids import Identity, identity_from_text
from pki.store import Store
from pki.verify import CertEncoding, PeerKey, authenticate_peer

log = logging.getLogger("pki")


class PKIAuth:
    """Our RSA key and certificates, and verified peer keys, from a Store."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    # --- exact API ----------------------------------------------------------------------------

    def signing_key(self, local: Identity) -> rsa.RSAPrivateKey:
        """The key that signs our HASH; raises PKIError (no key, unreadable, insecure file)."""
        return self.store.private_key(local)

    def cert_payloads(self, local: Identity, requested_cas: Sequence[bytes] = ()) -> list[bytes]:
        """DER certificates for our CERT payloads (X509_SIG), chosen by the peer's CERTREQ CAs.

        Empty when Cert-directory holds no certificate for our ID and key (isakmpd then sends
        no CERT and the peer must know our key).
        """
        try:
            key = self.store.private_key(local)
        except PKIError:
            key = None
        own = self.store.own_certificate(local, requested_cas, key)
        return own.payloads() if own is not None else []

    def keynote_payload(self, local: Identity) -> bytes | None:
        """Our KeyNote credentials as a CERT payload body (encoding KEYNOTE), or None.

        Ends in one NUL, as isakmpd's keynote_serialize sends the C string with its terminator.
        """
        creds = self.store.local_credentials(local)
        if creds is None:
            return None
        return creds.rstrip(b"\0") + b"\0"

    def certreq_authorities(self) -> list[bytes]:
        """DER CA names for our CERTREQ payloads (none when CA-directory is empty)."""
        return self.store.certreq_authorities()

    def authenticate(
        self,
        peer: Identity,
        payloads: Sequence[tuple[int, bytes]],
        now: float,
    ) -> PeerKey:
        """The peer's verified key and KeyNote material; raises PKIError saying why not."""
        return authenticate_peer(self.store, peer, payloads, now=now)

    # --- ike.auth.AuthSource ------------------------------------------------------------------

    def private_key(self, local_id: str) -> rsa.RSAPrivateKey | None:
        """AuthSource: our key for an ID given as text (None, logged, when there is none)."""
        try:
            return self.store.private_key(identity_from_text(local_id))
        except PKIError as err:
            log.warning("pki: local ID %s: %s", local_id, err)
            return None

    def certificates(self, local_id: str) -> Sequence[bytes]:
        """AuthSource: DER certificates to send for our ID."""
        return self.cert_payloads(identity_from_text(local_id))

    def peer_key(self, peer_id: str, certificates: Sequence[bytes]) -> PeerKey | None:
        """AuthSource: the verified key of the peer (None, logged by pki, when refused)."""
        payloads = [(int(CertEncoding.X509_SIG), der) for der in certificates]
        try:
            return self.authenticate(identity_from_text(peer_id), payloads, self.clock())
        except PKIError:
            return None
