"""ISAKMP wire format (RFC 2408 section 3): header, payloads, attributes, one error type.

    from ike.wire import Message, WireError
    msg = Message.decode(datagram)        # WireError(notify, message) on bad input
    datagram = msg.encode()               # byte-for-byte round trip
"""

from ike.wire.attributes import Attribute, attribute_map, decode_attributes, encode_attributes
from ike.wire.constants import (
    CertEncoding,
    CfgAttr,
    CfgType,
    Doi,
    ExchangeType,
    Flags,
    NotifyType,
    PayloadType,
)
from ike.wire.errors import WireError
from ike.wire.message import (
    Header,
    Message,
    decode_chain,
    decode_header,
    decode_payloads,
    encode_message,
    encode_payloads,
)
from ike.wire.payloads import (
    AttributePayload,
    Certificate,
    CertificateRequest,
    Delete,
    Hash,
    Identification,
    KeyExchange,
    NatD,
    NatOA,
    Nonce,
    Notify,
    Payload,
    Proposal,
    SecurityAssociation,
    Signature,
    Transform,
    UnknownPayload,
    VendorId,
)

__all__ = [
    "Attribute",
    "AttributePayload",
    "CertEncoding",
    "Certificate",
    "CertificateRequest",
    "CfgAttr",
    "CfgType",
    "Delete",
    "Doi",
    "ExchangeType",
    "Flags",
    "Hash",
    "Header",
    "Identification",
    "KeyExchange",
    "Message",
    "NatD",
    "NatOA",
    "Nonce",
    "Notify",
    "NotifyType",
    "Payload",
    "PayloadType",
    "Proposal",
    "SecurityAssociation",
    "Signature",
    "Transform",
    "UnknownPayload",
    "VendorId",
    "WireError",
    "attribute_map",
    "decode_attributes",
    "decode_chain",
    "decode_header",
    "decode_payloads",
    "encode_attributes",
    "encode_message",
    "encode_payloads",
]
