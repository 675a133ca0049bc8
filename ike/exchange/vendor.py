"""Vendor ID payloads isakmpd sends in the first message of each side, and recognises.

Sent in order: ``MD5("OpenBSD-6.3")``, the NAT-T VIDs (only when NAT traversal is on), the DPD
VID of RFC 3706.  Received VIDs are matched against all of these; unknown ones are ignored.
"""

from __future__ import annotations

import hashlib

from ike.wire import VendorId

__all__ = ["KNOWN", "recognise", "vendor_payloads"]

OPENBSD = hashlib.md5(b"OpenBSD-6.3").digest()
NATT_DRAFT_02 = hashlib.md5(b"draft-ietf-ipsec-nat-t-ike-02\n").digest()
NATT_DRAFT_03 = hashlib.md5(b"draft-ietf-ipsec-nat-t-ike-03").digest()
NATT_RFC3947 = hashlib.md5(b"RFC 3947").digest()
DPD = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")

KNOWN: dict[bytes, str] = {
    OPENBSD: "openbsd",
    NATT_DRAFT_02: "nat-t-draft-02",
    NATT_DRAFT_03: "nat-t-draft-03",
    NATT_RFC3947: "nat-t-rfc3947",
    DPD: "dpd",
}


_WITH_NATT = (VendorId(OPENBSD), VendorId(NATT_DRAFT_02), VendorId(NATT_DRAFT_03),
              VendorId(NATT_RFC3947), VendorId(DPD))
_WITHOUT_NATT = (VendorId(OPENBSD), VendorId(DPD))


def vendor_payloads(nat_traversal: bool) -> list[VendorId]:
    """The VIDs of our first message, in isakmpd's order (shared payloads: never mutated)."""
    return list(_WITH_NATT if nat_traversal else _WITHOUT_NATT)


def recognise(data: bytes) -> str | None:
    """The name of a known VID (DPD matched on its first 14 bytes, as RFC 3706 allows)."""
    name = KNOWN.get(bytes(data))
    if name is None and len(data) == 16 and bytes(data[:14]) == DPD[:14]:
        name = "dpd"
    return name
