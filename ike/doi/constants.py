"""IPsec DOI constants (RFC 2407) and IKE Phase 1 attributes (RFC 2409 appendix A).

Names as in isakmpd's ``ipsec_num.cst`` (``IPSEC_ESP_3DES`` -> ``EspTransformId``
member ``TRIPLEDES``, since a Python name cannot start with a digit;
``from_name("3DES")`` finds it).  Unknown values never raise.
"""

from __future__ import annotations

import enum

from ike.doi.tolerant import TolerantIntEnum


class ProtocolId(TolerantIntEnum):
    """Security protocol identifiers (RFC 2407 4.4.1)."""

    RESERVED = 0
    ISAKMP = 1
    IPSEC_AH = 2
    IPSEC_ESP = 3
    IPCOMP = 4


class Situation(enum.IntFlag):
    """IPsec DOI situation bits (RFC 2407 4.2)."""

    NONE = 0
    IDENTITY_ONLY = 1
    SECRECY = 2
    INTEGRITY = 4


class IsakmpTransformId(TolerantIntEnum):
    """Transform ids of PROTO_ISAKMP (RFC 2407 4.4.2)."""

    RESERVED = 0
    KEY_IKE = 1


class AhTransformId(TolerantIntEnum):
    """AH transform ids (RFC 2407 4.4.3, RFC 4868, RFC 4543)."""

    RESERVED = 0
    MD5 = 2
    SHA = 3
    DES = 4
    SHA2_256 = 5
    SHA2_384 = 6
    SHA2_512 = 7
    RIPEMD = 8
    AES_XCBC_MAC = 9
    RSA = 10
    AES_128_GMAC = 11
    AES_192_GMAC = 12
    AES_256_GMAC = 13


class EspTransformId(TolerantIntEnum):
    """ESP transform ids (RFC 2407 4.4.4, RFC 3602, 3686, 4106, 4309, 4543)."""

    RESERVED = 0
    DES_IV64 = 1
    DES = 2
    TRIPLEDES = 3
    RC5 = 4
    IDEA = 5
    CAST = 6
    BLOWFISH = 7
    TRIPLEIDEA = 8
    DES_IV32 = 9
    RC4 = 10
    NULL = 11
    AES = 12
    AES_CTR = 13
    AES_CCM_8 = 14
    AES_CCM_12 = 15
    AES_CCM_16 = 16
    AES_GCM_8 = 18
    AES_GCM_12 = 19
    AES_GCM_16 = 20
    SEED_CBC = 21
    CAMELLIA = 22
    AES_GMAC = 23


class IpcompTransformId(TolerantIntEnum):
    """IPComp transform ids (RFC 2407 4.4.5)."""

    RESERVED = 0
    OUI = 1
    DEFLATE = 2
    LZS = 3
    V42BIS = 4


_TRANSFORM_ENUMS: dict[int, type[TolerantIntEnum]] = {
    ProtocolId.ISAKMP: IsakmpTransformId,
    ProtocolId.IPSEC_AH: AhTransformId,
    ProtocolId.IPSEC_ESP: EspTransformId,
    ProtocolId.IPCOMP: IpcompTransformId,
}


def transform_id(protocol: int, value: int) -> int:
    """The transform id ``value`` as the enum of ``protocol`` (plain int if unknown)."""
    cls = _TRANSFORM_ENUMS.get(protocol)
    return cls.of(value) if cls is not None else value


class IpsecAttr(TolerantIntEnum):
    """IPsec SA attribute classes (RFC 2407 4.5, RFC 3168, RFC 4304)."""

    SA_LIFE_TYPE = 1
    SA_LIFE_DURATION = 2
    GROUP_DESCRIPTION = 3
    ENCAPSULATION_MODE = 4
    AUTHENTICATION_ALGORITHM = 5
    KEY_LENGTH = 6
    KEY_ROUNDS = 7
    COMPRESS_DICTIONARY_SIZE = 8
    COMPRESS_PRIVATE_ALGORITHM = 9
    ECN_TUNNEL = 10
    EXTENDED_SEQ_NUM = 11


class IpsecDuration(TolerantIntEnum):
    """SA_LIFE_TYPE values (RFC 2407 4.5)."""

    SECONDS = 1
    KILOBYTES = 2


class EncapsulationMode(TolerantIntEnum):
    """ENCAPSULATION_MODE values (RFC 2407 4.5, RFC 3947 and the NAT-T drafts)."""

    TUNNEL = 1
    TRANSPORT = 2
    UDP_ENCAP_TUNNEL = 3
    UDP_ENCAP_TRANSPORT = 4
    UDP_ENCAP_TUNNEL_DRAFT = 61443
    UDP_ENCAP_TRANSPORT_DRAFT = 61444


class AuthAlgorithm(TolerantIntEnum):
    """AUTHENTICATION_ALGORITHM values (RFC 2407 4.5, RFC 4868, RFC 4543)."""

    HMAC_MD5 = 1
    HMAC_SHA = 2
    DES_MAC = 3
    KPDK = 4
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7
    HMAC_RIPEMD = 8
    AES_XCBC_MAC = 9
    SIG_RSA = 10
    AES_128_GMAC = 11
    AES_192_GMAC = 12
    AES_256_GMAC = 13


class EcnTunnel(TolerantIntEnum):
    """ECN_TUNNEL values (RFC 3168 9.2.1)."""

    ALLOWED = 1
    FORBIDDEN = 2


class IdType(TolerantIntEnum):
    """Identification types (RFC 2407 4.6.2.1)."""

    RESERVED = 0
    IPV4_ADDR = 1
    FQDN = 2
    USER_FQDN = 3
    IPV4_ADDR_SUBNET = 4
    IPV6_ADDR = 5
    IPV6_ADDR_SUBNET = 6
    IPV4_RANGE = 7
    IPV6_RANGE = 8
    DER_ASN1_DN = 9
    DER_ASN1_GN = 10
    KEY_ID = 11


class IkeAttr(TolerantIntEnum):
    """Phase 1 attribute classes (RFC 2409 appendix A)."""

    ENCRYPTION_ALGORITHM = 1
    HASH_ALGORITHM = 2
    AUTHENTICATION_METHOD = 3
    GROUP_DESCRIPTION = 4
    GROUP_TYPE = 5
    GROUP_PRIME = 6
    GROUP_GENERATOR_1 = 7
    GROUP_GENERATOR_2 = 8
    GROUP_CURVE_A = 9
    GROUP_CURVE_B = 10
    LIFE_TYPE = 11
    LIFE_DURATION = 12
    PRF = 13
    KEY_LENGTH = 14
    FIELD_SIZE = 15
    GROUP_ORDER = 16


#: Phase 1 classes RFC 2409 appendix A marks "V" (variable): TLV when they do not fit 16 bits.
IKE_ATTR_VARIABLE = frozenset(
    {
        IkeAttr.GROUP_PRIME,
        IkeAttr.GROUP_GENERATOR_1,
        IkeAttr.GROUP_GENERATOR_2,
        IkeAttr.GROUP_CURVE_A,
        IkeAttr.GROUP_CURVE_B,
        IkeAttr.LIFE_DURATION,
        IkeAttr.GROUP_ORDER,
    }
)
#: IPsec classes RFC 2407 4.5 marks variable.
IPSEC_ATTR_VARIABLE = frozenset({IpsecAttr.SA_LIFE_DURATION, IpsecAttr.COMPRESS_PRIVATE_ALGORITHM})


class IkeEncrypt(TolerantIntEnum):
    """ENCRYPTION_ALGORITHM values (RFC 2409 appendix A, RFC 3602, RFC 4132)."""

    DES_CBC = 1
    IDEA_CBC = 2
    BLOWFISH_CBC = 3
    RC5_R16_B64_CBC = 4
    TRIPLEDES_CBC = 5
    CAST_CBC = 6
    AES_CBC = 7
    CAMELLIA_CBC = 8


class IkeHash(TolerantIntEnum):
    """HASH_ALGORITHM values (RFC 2409 appendix A, RFC 4868)."""

    MD5 = 1
    SHA = 2
    TIGER = 3
    SHA2_256 = 4
    SHA2_384 = 5
    SHA2_512 = 6


class IkeAuth(TolerantIntEnum):
    """AUTHENTICATION_METHOD values (RFC 2409 appendix A, RFC 4754, XAUTH/hybrid drafts)."""

    PRE_SHARED = 1
    DSS = 2
    RSA_SIG = 3
    RSA_ENC = 4
    RSA_ENC_REV = 5
    EL_GAMAL_ENC = 6
    EL_GAMAL_ENC_REV = 7
    ECDSA_SIG = 8
    ECDSA_SHA256 = 9
    ECDSA_SHA384 = 10
    ECDSA_SHA512 = 11
    HYBRID_INIT_RSA = 64221
    HYBRID_RESP_RSA = 64222
    HYBRID_INIT_DSS = 64223
    HYBRID_RESP_DSS = 64224
    XAUTH_INIT_PRESHARED = 65001
    XAUTH_RESP_PRESHARED = 65002
    XAUTH_INIT_DSS = 65003
    XAUTH_RESP_DSS = 65004
    XAUTH_INIT_RSA = 65005
    XAUTH_RESP_RSA = 65006
    XAUTH_INIT_RSA_ENC = 65007
    XAUTH_RESP_RSA_ENC = 65008
    XAUTH_INIT_RSA_REV = 65009
    XAUTH_RESP_RSA_REV = 65010


class IkeGroupDesc(TolerantIntEnum):
    """GROUP_DESCRIPTION values (RFC 2409, RFC 3526, RFC 5903, RFC 5114, RFC 6932)."""

    MODP_768 = 1
    MODP_1024 = 2
    EC2N_155 = 3
    EC2N_185 = 4
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    MODP_1024_160 = 22
    MODP_2048_224 = 23
    MODP_2048_256 = 24
    ECP_192 = 25
    ECP_224 = 26
    BP_224 = 27
    BP_256 = 28
    BP_384 = 29
    BP_512 = 30


class IkeGroupType(TolerantIntEnum):
    """GROUP_TYPE values (RFC 2409 appendix A)."""

    MODP = 1
    ECP = 2
    EC2N = 3


class IkeDuration(TolerantIntEnum):
    """LIFE_TYPE values (RFC 2409 appendix A)."""

    SECONDS = 1
    KILOBYTES = 2
