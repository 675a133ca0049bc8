"""Main Mode (Identity Protection, RFC 2409 5), six messages:
SA / SA / KE NONCE / KE NONCE / ID AUTH / ID AUTH."""

from __future__ import annotations

from typing import ClassVar

from ike.doi.constants import IkeAuth
from ike.exchange.phase1 import Phase1
from ike.wire import CertificateRequest, ExchangeType, Message, Payload, SecurityAssociation

__all__ = ["MainMode"]


class MainMode(Phase1):
    """Six messages; both roles.  The ``step`` is the number of the message we wait for."""

    kind: ClassVar[str] = "main"
    exchange_type: ClassVar[ExchangeType] = ExchangeType.ID_PROT

    def start(self, now: float) -> None:
        """Initiator: message 1, our proposal and VIDs."""
        self.send([self.offer(), *self.vendor_ids()], now, encrypt=False)
        self.step = 2
        self.set_state("sa-sent")

    def process(self, msg: Message, now: float) -> None:
        """Dispatch on (role, step)."""
        self.note_certreqs(msg)
        if self.initiator and self.step == 2:
            sa_payload = msg.get(SecurityAssociation)
            assert sa_payload is not None
            self.accept_answer(sa_payload)
            self.note_vendor_ids(msg)
            self.natt_start()
            extra = self._certreq()
            self.send([*self.make_ke_nonce(), *extra, *self.natd()], now, encrypt=False)
            self.step = 4
            self.set_state("ke-sent")
        elif self.initiator and self.step == 4:
            self.take_ke_nonce(msg)
            self.natd_check(msg)
            self.derive_keys()
            self.natt_float()
            self.send([self.id_local, *self.auth_payloads(), *self.initial_contact()], now,
                      encrypt=True)
            self.step = 6
            self.set_state("auth-sent")
        elif self.initiator and self.step == 6:
            self.take_identity(msg)
            self.verify_auth(msg, now)
            self.established(now, msg)
        elif self.step == 1:
            sa_payload = msg.get(SecurityAssociation)
            assert sa_payload is not None
            answer = self.choose(sa_payload)
            self.note_vendor_ids(msg)
            self.natt_start()
            # The answer to message 1 is not retransmitted (isakmpd's MSG_DONTRETRANSMIT).
            self.send([answer, *self.vendor_ids()], now, encrypt=False, retransmit=False)
            self.step = 3
            self.set_state("sa-sent")
        elif self.step == 3:
            self.take_ke_nonce(msg)
            self.natd_check(msg)
            extra = self._certreq() if msg.get(CertificateRequest) else []
            self.send([*self.make_ke_nonce(len(self.n_peer)), *extra, *self.natd()], now,
                      encrypt=False)
            self.derive_keys()
            self.step = 5
            self.set_state("ke-sent")
        elif self.step == 5:
            self.take_identity(msg)
            self.verify_auth(msg, now)
            self.send([self.id_local, *self.auth_payloads(), *self.initial_contact()], now,
                      encrypt=True, retransmit=False)
            self.established(now, msg)

    def _certreq(self) -> list[Payload]:
        assert self.choice is not None
        if self.choice.auth_method != IkeAuth.RSA_SIG:
            return []
        return self.certreq_payloads()
