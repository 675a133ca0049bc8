"""ISAKMP constants (RFC 2408, RFC 3947, RFC 3706, mode-config draft).

Names follow the RFCs and isakmpd's ``isakmp_num.cst`` (without the
``ISAKMP_PAYLOAD_`` style prefixes), so logs, configuration words and tshark
output grep alike.  Every enum tolerates unknown values: ``NotifyType(40001)``
is a pseudo-member named ``UNKNOWN_40001`` that keeps its integer, so a
decoded unknown value never raises.
"""

from __future__ import annotations

import enum

from ike.doi.tolerant import TolerantIntEnum as TolerantIntEnum


class PayloadType(TolerantIntEnum):
    """Next-payload values (RFC 2408 3.1, RFC 3947, NAT-T drafts, RFC 3547)."""

    NONE = 0
    SA = 1
    PROPOSAL = 2
    TRANSFORM = 3
    KEY_EXCH = 4
    ID = 5
    CERT = 6
    CERT_REQ = 7
    HASH = 8
    SIG = 9
    NONCE = 10
    NOTIFY = 11
    DELETE = 12
    VENDOR = 13
    ATTRIBUTE = 14
    SAK = 15
    SAT = 16
    KD = 17
    SEQ = 18
    POP = 19
    NAT_D = 20
    NAT_OA = 21
    NAT_D_DRAFT = 130
    NAT_OA_DRAFT = 131
    #: IKEv1 fragmentation (Cisco's private payload, also sent by strongSwan); kept opaque.
    FRAGMENT = 132


#: First and last payload numbers reserved by RFC 2408 (after the ones assigned since).
PAYLOAD_RESERVED_MIN = 22
PAYLOAD_RESERVED_MAX = 127
PAYLOAD_PRIVATE_MIN = 128


class ExchangeType(TolerantIntEnum):
    """Exchange types (RFC 2408 3.1, RFC 2409 for QUICK_MODE/NEW_GROUP_MODE)."""

    NONE = 0
    BASE = 1
    ID_PROT = 2
    AUTH_ONLY = 3
    AGGRESSIVE = 4
    INFO = 5
    TRANSACTION = 6
    QUICK_MODE = 32
    NEW_GROUP_MODE = 33

    # RFC 2409 names for the same values.
    MAIN_MODE = 2
    INFORMATIONAL = 5


class Flags(enum.IntFlag):
    """Header flags (RFC 2408 3.1); the other five bits must be zero."""

    NONE = 0
    ENC = 1
    COMMIT = 2
    AUTH_ONLY = 4


class NotifyType(TolerantIntEnum):
    """Notify message types: RFC 2408 3.14.1, RFC 2407 4.6.3, RFC 3706."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    CERT_TYPE_UNSUPPORTED = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30
    CONNECTED = 16384
    # IPsec DOI (RFC 2407 4.6.3).
    RESPONDER_LIFETIME = 24576
    REPLAY_STATUS = 24577
    INITIAL_CONTACT = 24578
    # Dead Peer Detection (RFC 3706).
    R_U_THERE = 36136
    R_U_THERE_ACK = 36137


class Doi(TolerantIntEnum):
    """Domains of interpretation (RFC 2408 3.4, RFC 2407)."""

    ISAKMP = 0
    IPSEC = 1


class CertEncoding(TolerantIntEnum):
    """Certificate encodings for CERT and CERT_REQ (RFC 2408 3.9)."""

    NONE = 0
    PKCS = 1
    PGP = 2
    DNS = 3
    X509_SIG = 4
    X509_KE = 5
    KERBEROS = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_ATTR = 10


class CfgType(TolerantIntEnum):
    """Mode-config Attribute payload types (draft-dukes-ike-mode-cfg 3.2)."""

    RESERVED = 0
    CFG_REQUEST = 1
    CFG_REPLY = 2
    CFG_SET = 3
    CFG_ACK = 4


class CfgAttr(TolerantIntEnum):
    """Mode-config and XAUTH attribute types (mode-cfg draft 3.3, XAUTH draft)."""

    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_ADDRESS_EXPIRY = 5
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_NETMASK = 9
    INTERNAL_IP6_DNS = 10
    INTERNAL_IP6_NBNS = 11
    INTERNAL_IP6_DHCP = 12
    INTERNAL_IP4_SUBNET = 13
    SUPPORTED_ATTRIBUTES = 14
    INTERNAL_IP6_SUBNET = 15
    XAUTH_TYPE = 16520
    XAUTH_USER_NAME = 16521
    XAUTH_USER_PASSWORD = 16522
    XAUTH_PASSCODE = 16523
    XAUTH_MESSAGE = 16524
    XAUTH_CHALLENGE = 16525
    XAUTH_DOMAIN = 16526
    XAUTH_STATUS = 16527
    XAUTH_NEXT_PIN = 16528
    XAUTH_ANSWER = 16529


#: ISAKMP version byte we speak: major 1, minor 0.
ISAKMP_VERSION = 0x10
#: Sizes of the fixed parts (RFC 2408 3.1 and 3.2).
HEADER_SIZE = 28
GENERIC_HEADER_SIZE = 4
COOKIE_SIZE = 8
