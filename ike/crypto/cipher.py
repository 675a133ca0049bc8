"""Phase 1 CBC ciphers and the CBC IV chaining of isakmpd (RFC 2409 appendix A, B).

ENCRYPTION_ALGORITHM ids: BLOWFISH_CBC 3, 3DES_CBC 5, CAST_CBC 6, AES_CBC 7;
like current isakmpd ``crypto.c`` there is no single DES (id 1 is refused as
unsupported, so a DES proposal is not chosen).  Key sizes are those of
``crypto.c`` (bytes): 3DES 24, Blowfish 12..56, CAST 12..16, AES 16..32.
Without a KEY_LENGTH attribute the negotiated key is the cipher's maximum
(isakmpd ``keymax``); the generated configuration sections offer KEY_LENGTH
128 for Blowfish and AES.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:  # cryptography >= 43 keeps the old 64-bit block ciphers here
    from cryptography.hazmat.decrepit.ciphers import algorithms as _decrepit
except ImportError:  # pragma: no cover - older cryptography
    _decrepit = algorithms  # type: ignore[misc]

__all__ = [
    "AES_CBC",
    "BLOWFISH_CBC",
    "CAST_CBC",
    "CBC",
    "CIPHERS",
    "TRIPLEDES_CBC",
    "CipherError",
    "CipherSpec",
    "Keystate",
    "cipher_spec",
    "negotiated_key_length",
    "pad",
]

BLOWFISH_CBC = 3
TRIPLEDES_CBC = 5
CAST_CBC = 6
AES_CBC = 7


class CipherError(ValueError):
    """Unsupported cipher, bad key length, or ciphertext not a whole number of blocks."""


@dataclass(frozen=True, slots=True)
class CipherSpec:
    """One Phase 1 cipher: ids and sizes in bytes."""

    ike_id: int
    name: str
    block_size: int
    key_min: int
    key_max: int
    default_key_bits: int | None   # KEY_LENGTH offered by the generated conf sections
    variable_key: bool             # KEY_LENGTH attribute allowed

    def algorithm(self, key: bytes) -> Any:
        """The ``cryptography`` algorithm object for ``key``."""
        if self.ike_id == AES_CBC:
            return algorithms.AES(key)
        if self.ike_id == TRIPLEDES_CBC:
            return _decrepit.TripleDES(key)
        if self.ike_id == BLOWFISH_CBC:
            return _decrepit.Blowfish(key)
        return _decrepit.CAST5(key)


CIPHERS: dict[int, CipherSpec] = {
    BLOWFISH_CBC: CipherSpec(BLOWFISH_CBC, "BLOWFISH_CBC", 8, 12, 56, 128, True),
    TRIPLEDES_CBC: CipherSpec(TRIPLEDES_CBC, "3DES_CBC", 8, 24, 24, None, False),
    CAST_CBC: CipherSpec(CAST_CBC, "CAST_CBC", 8, 12, 16, None, True),
    AES_CBC: CipherSpec(AES_CBC, "AES_CBC", 16, 16, 32, 128, True),
}


def cipher_spec(enc_id: int) -> CipherSpec:
    """The spec of ENCRYPTION_ALGORITHM ``enc_id``; CipherError if not implemented."""
    spec = CIPHERS.get(int(enc_id))
    if spec is None:
        raise CipherError(f"unsupported Phase 1 encryption algorithm {int(enc_id)}")
    return spec


def negotiated_key_length(enc_id: int, key_length_bits: int | None = None) -> int:
    """The Phase 1 key length in bytes: the KEY_LENGTH attribute or the cipher maximum."""
    spec = cipher_spec(enc_id)
    if key_length_bits is None or key_length_bits == 0:
        return spec.key_max
    if key_length_bits % 8:
        raise CipherError(f"{spec.name}: KEY_LENGTH {key_length_bits} is not a multiple of 8")
    n = key_length_bits // 8
    if not spec.key_min <= n <= spec.key_max:
        raise CipherError(
            f"{spec.name}: KEY_LENGTH {key_length_bits} outside "
            f"{spec.key_min * 8}..{spec.key_max * 8} bits"
        )
    return n


def pad(data: bytes, block_size: int) -> bytes:
    """Zero-pad ``data`` to a whole number of blocks (RFC 2409 appendix B).

    Receivers ignore the bytes after the last payload, so peers' own padding
    styles (zeros, a trailing length byte, an extra block) all decode.
    """
    rem = len(data) % block_size
    return data if rem == 0 else data + bytes(block_size - rem)


class CBC:
    """A keyed CBC cipher; the IV is passed per call."""

    __slots__ = ("_alg", "_ecb_decrypt", "_enc", "_enc_chain", "block_size", "spec")

    def __init__(self, enc_id: int, key: bytes) -> None:
        self.spec = cipher_spec(enc_id)
        if not self.spec.key_min <= len(key) <= self.spec.key_max:
            raise CipherError(f"{self.spec.name}: key of {len(key)} bytes not allowed")
        if self.spec.ike_id == AES_CBC and len(key) not in (16, 24, 32):
            raise CipherError(f"AES_CBC: key of {len(key)} bytes not allowed")
        self.block_size = self.spec.block_size
        try:
            self._alg = self.spec.algorithm(key)
        except ValueError as e:  # pragma: no cover - sizes are checked above
            raise CipherError(f"{self.spec.name}: {e}") from e
        # One ECB decryption context per key (whole blocks only, so it carries no state from
        # one call to the next): CBC decryption is then one OpenSSL call plus one XOR, without
        # building a Cipher object per message.
        self._ecb_decrypt = Cipher(self._alg, modes.ECB()).decryptor()
        # One CBC encryption context per key too, made on first use (a context costs more to
        # build than a message to encrypt).  Fed whole blocks only, it carries nothing from one
        # call to the next but its chaining block, the last ciphertext block it produced (at
        # first its IV), kept in ``_enc_chain``: CBC under IV ``iv`` is then the context's CBC
        # of the data whose first block is XORed with ``iv ^ chain``.
        self._enc: Any = None
        self._enc_chain = bytes(self.block_size)

    def _check(self, iv: bytes, data: bytes) -> None:
        """Raise CipherError for a wrong IV size or a partial block (the callers test the sizes
        inline first and call this only to raise)."""
        if len(iv) != self.block_size:
            raise CipherError(f"{self.spec.name}: IV of {len(iv)} bytes, need {self.block_size}")
        if not data or len(data) % self.block_size:
            raise CipherError(
                f"{self.spec.name}: {len(data)} bytes is not a whole number of "
                f"{self.block_size}-byte blocks"
            )

    def encrypt(self, iv: bytes, data: bytes) -> bytes:
        """CBC-encrypt whole blocks (pad first with :func:`pad`)."""
        bs = self.block_size
        if len(iv) != bs or not data or len(data) % bs:
            self._check(iv, data)
        enc = self._enc
        if enc is None:
            enc = self._enc = Cipher(self._alg, modes.CBC(self._enc_chain)).encryptor()
        out: bytes = enc.update((int.from_bytes(data[:bs]) ^ int.from_bytes(iv)
                          ^ int.from_bytes(self._enc_chain)).to_bytes(bs) + data[bs:])
        self._enc_chain = out[-bs:]
        return out

    def decrypt(self, iv: bytes, data: bytes) -> bytes:
        """CBC-decrypt whole blocks; the padding is left for the payload parser to ignore."""
        bs = self.block_size
        n = len(data)
        if len(iv) != bs or not n or n % bs:
            self._check(iv, data)
        # P_i = D(C_i) xor C_(i-1), with C_0 = IV: all blocks at once as one big integer
        return (
            int.from_bytes(self._ecb_decrypt.update(data), "big")
            ^ int.from_bytes(iv + data[: n - bs], "big")
        ).to_bytes(n, "big")


class Keystate:
    """The CBC state of one exchange, as isakmpd's ``struct keystate``.

    ``iv`` (isakmpd ``riv``) encrypts or decrypts the next message; each
    encrypt/decrypt stores that message's last cipher block as the pending IV
    (``liv``), and :meth:`update_iv` makes it current once the message has been
    sent or accepted.  So one chain runs through the messages of both
    directions in order, and a rejected message does not disturb it.
    """

    __slots__ = ("cbc", "iv", "pending_iv")

    def __init__(self, cbc: CBC, iv: bytes) -> None:
        if len(iv) < cbc.block_size:
            raise CipherError(f"IV of {len(iv)} bytes, need {cbc.block_size}")
        self.cbc = cbc
        self.iv = iv[: cbc.block_size]
        self.pending_iv = self.iv

    @property
    def block_size(self) -> int:
        """The cipher block size in bytes."""
        return self.cbc.block_size

    def init_iv(self, iv: bytes) -> None:
        """Set the current IV (Phase 1 start, or hash(IV | M-ID) for Phase 2)."""
        self.iv = iv[: self.cbc.block_size]

    def encrypt(self, plaintext: bytes) -> bytes:
        """Pad and encrypt a message body under the current IV."""
        ct = self.cbc.encrypt(self.iv, pad(plaintext, self.cbc.block_size))
        self.pending_iv = ct[-self.cbc.block_size:]
        return ct

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt a message body under the current IV (padding kept)."""
        pt = self.cbc.decrypt(self.iv, ciphertext)
        self.pending_iv = ciphertext[-self.cbc.block_size:]
        return pt

    def update_iv(self) -> None:
        """Adopt the last cipher block of the last message (isakmpd ``crypto_update_iv``)."""
        self.iv = self.pending_iv

    def clone(self) -> Keystate:
        """An independent copy (isakmpd ``crypto_clone_keystate``), e.g. for a Phase 2 exchange."""
        ks = Keystate(self.cbc, self.iv)
        ks.pending_iv = self.pending_iv
        return ks
