"""The IPsec Domain of Interpretation (RFC 2407): constants here, ID helpers in ike.doi.ident.

ike.wire imports this package, so it must not import ike.wire back (ike.doi.ident
does, and is therefore not re-exported here).
"""

from ike.doi.constants import (
    AhTransformId,
    AuthAlgorithm,
    EcnTunnel,
    EncapsulationMode,
    EspTransformId,
    IdType,
    IkeAttr,
    IkeAuth,
    IkeDuration,
    IkeEncrypt,
    IkeGroupDesc,
    IkeGroupType,
    IkeHash,
    IpcompTransformId,
    IpsecAttr,
    IpsecDuration,
    IsakmpTransformId,
    ProtocolId,
    Situation,
    transform_id,
)

__all__ = [
    "AhTransformId",
    "AuthAlgorithm",
    "EcnTunnel",
    "EncapsulationMode",
    "EspTransformId",
    "IdType",
    "IkeAttr",
    "IkeAuth",
    "IkeDuration",
    "IkeEncrypt",
    "IkeGroupDesc",
    "IkeGroupType",
    "IkeHash",
    "IpcompTransformId",
    "IpsecAttr",
    "IpsecDuration",
    "IsakmpTransformId",
    "ProtocolId",
    "Situation",
    "transform_id",
]
