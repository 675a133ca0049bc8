"""Informational exchanges (RFC 2409 5.7): notifications and DELETEs, protected by HASH(1)
= prf(SKEYID_a, M-ID | N/D) and encrypted once Phase 1 is done; in cleartext before that.

One message each, never retransmitted; built and read here, acted on by the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ike.crypto.cipher import Keystate, cipher_spec
from ike.crypto.keymat import info_hash, phase2_iv
from ike.exchange.base import rest_of
from ike.exchange.errors import ExchangeError
from ike.sa import IsakmpSA
from ike.wire import (
    ExchangeType,
    Flags,
    Hash,
    Message,
    NotifyType,
    Payload,
    PayloadType,
    encode_payloads,
)

if TYPE_CHECKING:
    from ike.engine import Engine

__all__ = ["open_protected", "protected", "unprotected"]

log = logging.getLogger("ike.exchange")


def _keystate(sa: IsakmpSA, message_id: int) -> Keystate:
    assert sa.keys is not None
    block = cipher_spec(sa.encryption).block_size
    return Keystate(sa.cbc(),
                    phase2_iv(sa.hash_alg, sa.iv, message_id, block))


def protected(engine: Engine, sa: IsakmpSA, payloads: Sequence[Payload]) -> bytes:
    """An encrypted Informational with HASH(1) over the N/D payloads, on a fresh M-ID."""
    assert sa.keys is not None
    message_id = engine.new_message_id(sa)
    body = list(payloads)
    digest = info_hash(sa.hash_alg, sa.keys.skeyid_a, message_id,
                       encode_payloads(body)[1])
    msg = Message(sa.icookie, sa.rcookie, ExchangeType.INFO, Flags.ENC, message_id,
                  [Hash(digest), *body])
    clear = msg.encode() if engine.capture_cleartext else b""
    first, plain = encode_payloads(msg.payloads)
    msg.ciphertext = _keystate(sa, message_id).encrypt(plain)
    msg.first_payload = first
    data = msg.encode()
    if clear:
        engine.remember_cleartext(data, clear)
    return data


def unprotected(engine: Engine, icookie: bytes, rcookie: bytes,
                payloads: Sequence[Payload]) -> bytes:
    """A cleartext Informational, for errors before Phase 1 has keys."""
    msg = Message(icookie, rcookie, ExchangeType.INFO, Flags.NONE, 0, list(payloads))
    return msg.encode()


def open_protected(sa: IsakmpSA, msg: Message) -> Message:
    """Decrypt and authenticate an Informational of an established SA (ExchangeError if not)."""
    if msg.ciphertext is None:
        raise ExchangeError(NotifyType.INVALID_FLAGS, "cleartext informational after Phase 1",
                            send=False)
    assert sa.keys is not None
    plain = msg.with_plaintext(_keystate(sa, msg.message_id).decrypt(msg.ciphertext))
    if not plain.payloads or plain.payloads[0].payload_type != PayloadType.HASH:
        raise ExchangeError(NotifyType.PAYLOAD_MALFORMED, "informational without HASH",
                            send=False)
    got = plain.payloads[0]
    assert isinstance(got, Hash)
    want = info_hash(sa.hash_alg, sa.keys.skeyid_a, msg.message_id, rest_of(plain))
    if bytes(got.data) != want:
        raise ExchangeError(NotifyType.INVALID_HASH_INFORMATION,
                            "informational HASH(1) does not verify", send=False)
    return plain
