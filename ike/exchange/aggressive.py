"""Aggressive Mode (RFC 2409 5): SA KE NONCE ID / SA KE NONCE ID AUTH / AUTH."""

from __future__ import annotations

from typing import ClassVar

from ike.doi.constants import IkeAttr
from ike.exchange.errors import ExchangeError
from ike.exchange.phase1 import Phase1
from ike.wire import ExchangeType, Message, NotifyType, SecurityAssociation

__all__ = ["AggressiveMode"]


class AggressiveMode(Phase1):
    """Three messages; both roles.  Every transform must carry the same group."""

    kind: ClassVar[str] = "aggressive"
    exchange_type: ClassVar[ExchangeType] = ExchangeType.AGGRESSIVE

    def _common_group(self, sa_payload: SecurityAssociation) -> int:
        groups = {a.as_int() for p in sa_payload.proposals for t in p.transforms
                  for a in t.attributes if a.type == IkeAttr.GROUP_DESCRIPTION}
        if len(groups) != 1:
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN,
                                "aggressive mode needs one group in every transform")
        return groups.pop()

    def start(self, now: float) -> None:
        """Initiator: message 1 with our proposal, KE, nonce, ID and VIDs."""
        from ike.crypto import dh

        offer = self.offer()
        try:
            self.group = dh.group(self._common_group(offer))
        except (dh.DHError, KeyError, ValueError) as e:
            raise ExchangeError(NotifyType.NO_PROPOSAL_CHOSEN, str(e)) from None
        self.send([offer, *self.make_ke_nonce(), self.id_local, *self.vendor_ids()], now,
                  encrypt=False)
        self.step = 2
        self.set_state("sa-ke-sent")

    def process(self, msg: Message, now: float) -> None:
        """Dispatch on (role, step)."""
        self.note_certreqs(msg)
        sa_payload = msg.get(SecurityAssociation)
        if self.initiator and self.step == 2:
            assert sa_payload is not None
            self.accept_answer(sa_payload)
            self.note_vendor_ids(msg)
            self.natt_start()
            self.take_ke_nonce(msg)
            self.take_identity(msg)
            self.derive_keys()
            self.verify_auth(msg, now)
            self.natd_check(msg)
            self.natt_float()  # message 3 already goes from port 4500, its NAT-D says so
            self.send([*self.auth_payloads(), *self.natd()], now, encrypt=True,
                      retransmit=False)
            self.established(now, None)
        elif self.step == 1:
            assert sa_payload is not None
            self._common_group(sa_payload)
            answer = self.choose(sa_payload)
            self.note_vendor_ids(msg)
            self.natt_start()
            self.take_ke_nonce(msg)
            self.take_identity(msg)
            ke_nonce = self.make_ke_nonce(len(self.n_peer))
            self.derive_keys()
            # The answer to message 1 is not retransmitted (isakmpd's MSG_DONTRETRANSMIT).
            self.send([answer, *ke_nonce, self.id_local, *self.auth_payloads(),
                       *self.vendor_ids(), *self.natd()], now, encrypt=False,
                      retransmit=False)
            self.step = 3
            self.set_state("sa-ke-auth-sent")
        elif self.step == 3:
            self.verify_auth(msg, now)
            self.natd_check(msg)
            self.established(now, None)
