"""The one error type of the pki layer, with a machine-readable reason."""

from __future__ import annotations

from enum import Enum


class Reason(Enum):
    """Why a PKI operation failed; tests and the engine switch on this, people read the message."""

    UNREADABLE = "unreadable"  # a file could not be read or parsed
    INSECURE_FILE = "insecure-file"  # a key file readable by group or others
    NO_PRIVATE_KEY = "no-private-key"
    NO_PUBLIC_KEY = "no-public-key"  # no CERT, stored certificate or raw key for the peer
    UNKNOWN_CA = "unknown-ca"  # no path to a CA in CA-directory
    BAD_SIGNATURE = "bad-signature"  # a certificate signature does not verify
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    KEY_USAGE = "key-usage"
    WEAK_KEY = "weak-key"
    REVOKED = "revoked"
    CRL_MISSING = "crl-missing"  # CRL checking is on but no CRL from this issuer
    CRL_STALE = "crl-stale"  # nextUpdate passed (or lastUpdate in the future)
    CRL_INVALID = "crl-invalid"  # signature, issuer or critical extensions wrong
    ID_MISMATCH = "id-mismatch"
    NO_SUBJECT_ALT_NAME = "no-subject-alt-name"
    UNSUPPORTED = "unsupported"  # an ID type, key type or encoding we cannot use
    BAD_CREDENTIAL = "bad-credential"  # KeyNote credential malformed or badly signed
    CHAIN_INVALID = "chain-invalid"  # any other path validation failure


class PKIError(Exception):
    """Raised by pki for every failure; str(e) is a complete sentence naming the file or peer."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        path: str | None = None,
        serial: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.path = path
        self.serial = serial
