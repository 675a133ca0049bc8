"""Constants: names as in the RFCs/isakmpd, unknown values tolerated, attribute forms."""

from __future__ import annotations

from ike.doi.constants import (
    EspTransformId,
    IkeAttr,
    IkeEncrypt,
    IkeGroupDesc,
    IpcompTransformId,
    IsakmpTransformId,
    ProtocolId,
    transform_id,
)
from ike.wire import Attribute, ExchangeType, NotifyType, PayloadType, attribute_map
from ike.wire.attributes import decode_attributes, encode_attributes


def test_unknown_values_keep_their_number() -> None:
    n = NotifyType(40001)
    assert n == 40001 and n.name == "UNKNOWN_40001" and not n.known
    assert NotifyType.R_U_THERE.known and NotifyType(36136) is NotifyType.R_U_THERE
    assert ExchangeType(200).value == 200


def test_names_match_the_rfcs_and_isakmpd() -> None:
    assert ExchangeType["MAIN_MODE"] is ExchangeType.ID_PROT
    assert int(PayloadType.NAT_D) == 20 and int(PayloadType.NAT_D_DRAFT) == 130
    assert int(NotifyType.INITIAL_CONTACT) == 24578
    assert IkeEncrypt.from_name("3DES_CBC") is IkeEncrypt.TRIPLEDES_CBC
    assert EspTransformId.from_name("3des") is EspTransformId.TRIPLEDES
    assert IkeGroupDesc.from_name("modp-2048") == 14
    assert int(IkeGroupDesc.BP_512) == 30


def test_transform_id_follows_the_protocol() -> None:
    assert transform_id(ProtocolId.ISAKMP, 1) is IsakmpTransformId.KEY_IKE
    assert transform_id(ProtocolId.IPSEC_ESP, 12) is EspTransformId.AES
    assert transform_id(ProtocolId.IPCOMP, 2) is IpcompTransformId.DEFLATE
    assert transform_id(99, 5) == 5


def test_attribute_forms() -> None:
    assert Attribute.make(IkeAttr.LIFE_DURATION, 3600).encode().hex() == "800c0e10"
    long = Attribute.make(IkeAttr.LIFE_DURATION, 86400)
    assert long.encode().hex() == "000c000400015180" and long.as_int() == 86400
    assert not long.is_basic and Attribute(1, 7).is_basic
    # a variable attribute that would fit 16 bits keeps its TLV form
    short_tlv = Attribute(IkeAttr.LIFE_DURATION, b"\x0e\x10")
    wire = encode_attributes([short_tlv, Attribute(1, 5)])
    assert decode_attributes(memoryview(wire), "t") == [short_tlv, Attribute(1, 5)]
    empty = Attribute(1, b"")
    assert decode_attributes(memoryview(empty.encode()), "t") == [empty]


def test_attribute_map_keeps_the_first() -> None:
    m = attribute_map([Attribute(1, 5), Attribute(2, 1), Attribute(1, 7)])
    assert m[1].value == 5 and m[2].value == 1


def test_every_codec_module_imports_first_in_a_fresh_interpreter() -> None:
    # ike.wire.constants and ike.doi import each other's packages; any order must work.
    import subprocess
    import sys

    modules = [
        "ike.doi", "ike.doi.constants", "ike.doi.tolerant", "ike.doi.ident", "ike.wire",
        "ike.wire.constants", "ike.wire.payloads", "ike.wire.message", "ike.wire.attributes",
        "ike.wire.errors", "ike.wire.buffer", "ike.wire.pcap", "ike.doi.validate",
    ]  # fmt: skip
    for m in modules:
        subprocess.run([sys.executable, "-c", f"import {m}"], check=True)
