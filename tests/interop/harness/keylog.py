"""Keying material out of peers' logs: charon at ike/chd level 4, pluto with "crypt private".

charon (reference/interop.md 6) dumps ``NAME => N bytes @ 0xADDR`` followed by 16-byte hex rows
from the same thread.  Phase 1: SKEYID, SKEYID_d/_a/_e, "encryption key Ka", "initial IV".
Phase 2: "initiator SA seed" / "responder SA seed" (``[g(qm)^xy |] 03 | SPI | Ni_b | Nr_b``) and
"encryption/integrity initiator/responder key"; the *initiator* keys belong to the SA whose SPI
is in the initiator seed, the one the Quick Mode initiator sends on.

pluto (interop.md 7.4) prints, per SA, the SPI and the KEYMAT (encryption key || integrity key)
after "ikev1_section_5_keymat"; its SKEYIDs stay inside NSS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .model import EspKeys

_LINE = re.compile(r"^\S+ (\d+)\[(\w+)\] (?:<(?:([^>|]*)\|)?(\d+)> )?(.*)$")
_HEAD = re.compile(r"^(.+?) => (\d+) bytes @ 0x[0-9a-f]+$")
_ROW_FULL = re.compile(r"^\s*\d+: ((?:[0-9A-F]{2} )*[0-9A-F]{2})\b")
_CHILD_UP = re.compile(
    r"CHILD_SA (\S+)\{(\d+)\} established with SPIs ([0-9a-f]{8})_i ([0-9a-f]{8})_o")
_IKE_UP = re.compile(r"IKE_SA (\S+)\[(\d+)\] established between")
_ADDING = re.compile(r"adding (inbound|outbound) ESP SA$")
_ADDING_SPI = re.compile(r"^\s+SPI 0x([0-9a-f]{8}), src")
_INSTALL_FAILED = re.compile(r"unable to install inbound and outbound IPsec SA")

PHASE1_NAMES = ("shared Diffie Hellman secret", "SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e",
                "encryption key Ka", "initial IV")
_CHILD_NAMES = ("initiator SA seed", "responder SA seed", "encryption initiator key",
                "encryption responder key", "integrity initiator key",
                "integrity responder key")


@dataclass
class CharonChild:
    """One CHILD_SA charon established, with the keys of both of its SAs."""

    name: str
    uid: int
    ike_uid: int
    spi_in: str
    spi_out: str
    keys: dict[str, EspKeys] = field(default_factory=dict)
    we_initiated_qm: bool = False
    established: bool = True


@dataclass
class CharonKeyLog:
    """Parsed key log: Phase 1 values by IKE_SA unique id, and the established children."""

    ike: dict[int, dict[str, str]] = field(default_factory=dict)
    ike_established: list[int] = field(default_factory=list)
    children: list[CharonChild] = field(default_factory=list)

    def esp_keys(self) -> dict[str, EspKeys]:
        """Keys by SPI over every child, established or refused by the kernel (later ones win
        on reuse)."""
        out: dict[str, EspKeys] = {}
        for child in self.children:
            out.update(child.keys)
        return out


def _finish_child(log: CharonKeyLog, pending: dict[str, str], name: str, uid: int,
                  ike_uid: int, spi_in: str, spi_out: str, established: bool = True) -> None:
    child = CharonChild(name, uid, ike_uid, spi_in, spi_out, established=established)
    seed_i = pending.get("initiator SA seed", "")
    # The initiator seed carries 03 | SPI-of-the-QM-initiator's-outbound-SA right before the
    # nonces; without PFS at its start, with PFS after g(qm)^xy (even hex offsets only).
    pos_out = seed_i.find("03" + spi_out)
    pos_in = seed_i.find("03" + spi_in)
    pos_out = pos_out if pos_out % 2 == 0 else -1
    pos_in = pos_in if pos_in % 2 == 0 else -1
    child.we_initiated_qm = pos_out >= 0 and (pos_in < 0 or pos_out <= pos_in)
    init_spi, resp_spi = (spi_out, spi_in) if child.we_initiated_qm else (spi_in, spi_out)
    child.keys[init_spi] = EspKeys(init_spi, pending.get("encryption initiator key", ""),
                                   pending.get("integrity initiator key", ""))
    child.keys[resp_spi] = EspKeys(resp_spi, pending.get("encryption responder key", ""),
                                   pending.get("integrity responder key", ""))
    log.children.append(child)


def parse_charon_log(text: str) -> CharonKeyLog:
    """Parse a charon filelog written with ``ike_name = yes``, ``ike = 4``, ``chd = 4``.

    Dumps are followed per thread (hex rows come from the thread that printed the header), so
    interleaved threads do not mix; key sets are attached per IKE_SA unique id to the child
    established next on that IKE_SA.  A child whose SAs the kernel refused ("unable to install",
    no ESP here) is kept with ``established`` False and the SPIs of its "adding ... ESP SA"
    lines."""
    log = CharonKeyLog()
    adding: dict[int, dict[str, str]] = {}  # IKE uid -> {"inbound"/"outbound": SPI, "next": dir}
    dumping: dict[str, tuple[str, int, int, list[str]]] = {}  # thread -> name, size, uid, hex
    child_keys: dict[int, dict[str, str]] = {}  # IKE uid -> pending child key dumps
    for raw in text.splitlines():
        m = _LINE.match(raw)
        if m is None:
            continue
        thread, _group, _ikename, uid_s, msg = m.groups()
        uid = int(uid_s) if uid_s else 0
        if thread in dumping:
            name, size, duid, buf = dumping[thread]
            row = _ROW_FULL.match(msg)
            if row is not None:
                buf.append(row.group(1).replace(" ", "").lower())
                got = "".join(buf)
                if len(got) >= 2 * size:
                    del dumping[thread]
                    _store(log, child_keys, name, duid, got[: 2 * size])
                continue
            del dumping[thread]
        head = _HEAD.match(msg)
        if head is not None:
            name, size = head.group(1).strip(), int(head.group(2))
            if name in PHASE1_NAMES or name in _CHILD_NAMES:
                if size == 0:
                    _store(log, child_keys, name, uid, "")
                else:
                    dumping[thread] = (name, size, uid, [])
            continue
        add = _ADDING.search(msg)
        if add is not None:
            adding.setdefault(uid, {})["next"] = add.group(1)
            continue
        spi_line = _ADDING_SPI.match(msg)
        if spi_line is not None and "next" in adding.get(uid, {}):
            adding[uid][adding[uid].pop("next")] = spi_line.group(1)
            continue
        if _INSTALL_FAILED.search(msg) and uid in child_keys:
            seen = adding.pop(uid, {})
            _finish_child(log, child_keys.pop(uid), "", 0, uid, seen.get("inbound", ""),
                          seen.get("outbound", ""), established=False)
            continue
        up = _CHILD_UP.search(msg)
        if up is not None:
            adding.pop(uid, None)
            _finish_child(log, child_keys.pop(uid, {}), up.group(1), int(up.group(2)), uid,
                          up.group(3), up.group(4))
            continue
        ike = _IKE_UP.search(msg)
        if ike is not None:
            log.ike_established.append(int(ike.group(2)))
    return log


def charon_child_key_lines(text: str) -> list[str]:
    """charon's Phase 2 key dumps (headers with their rows, thread by thread) and CHILD_SA
    lines, as logged: what a failure message shows beside the parsed keys."""
    out: list[str] = []
    dumping: set[str] = set()
    for raw in text.splitlines():
        m = _LINE.match(raw)
        if m is None:
            continue
        thread, msg = m.group(1), m.group(5)
        if thread in dumping and _ROW_FULL.match(msg) is not None:
            out.append(raw)
            continue
        dumping.discard(thread)
        head = _HEAD.match(msg)
        if head is not None and head.group(1).strip() in _CHILD_NAMES:
            dumping.add(thread)
            out.append(raw)
        elif "CHILD_SA" in msg:
            out.append(raw)
    return out


def _store(log: CharonKeyLog, child_keys: dict[int, dict[str, str]], name: str, uid: int,
           value: str) -> None:
    if name in PHASE1_NAMES:
        log.ike.setdefault(uid, {})[name] = value
    else:
        if name == "initiator SA seed":
            child_keys[uid] = {}
        child_keys.setdefault(uid, {})[name] = value


_PLUTO_DEBUG = re.compile(r"^(?:.*?: )?\| (.*)$")
_PLUTO_HEX = re.compile(r"^  ((?:[0-9a-f]{2}(?: {1,2}|$))+)")
_PLUTO_NEED = re.compile(r"^required keymat: (\d+)$")
_PLUTO_RETURNS = "ikev1_section_5_keymat() returns:"


@dataclass
class PlutoKeymat:
    """One SA's KEYMAT as pluto logged it: SPI and enc||integ bytes (``lines``: the log lines
    they were read from, other threads' lines among them, for failure messages)."""

    spi: str
    keymat: str
    lines: list[str] = field(default_factory=list, compare=False, repr=False)

    def split(self, enc_len: int) -> EspKeys:
        """Cut the KEYMAT into the encryption and integrity keys (enc_len bytes first)."""
        return EspKeys(self.spi, self.keymat[: 2 * enc_len], self.keymat[2 * enc_len:])


def parse_pluto_log(text: str) -> list[PlutoKeymat]:
    """Every ``ikev1_section_5_keymat`` computation in a pluto log with ``plutodebug="base
    crypt private"``: the hex row after "| SPI" and, after "... returns:", rows until the
    "required keymat: N" bytes are in (rows are ``|   xx xx xx xx  xx ...   ascii``).

    pluto's crypto helper threads write to the same file line by line, so a line such as
    "| helper 1: waiting for work" can fall between "| SPI" and its row or between the
    KEYMAT rows; such lines are skipped, not taken as the end of the value.  A computation
    whose rows are not all in the log yet gives nothing."""
    out: list[PlutoKeymat] = []
    collecting = ""  # "spi" or "keymat" while their rows are awaited
    spi = keymat = ""
    need = 0  # KEYMAT bytes, from "required keymat: N"; 0 when pluto did not say
    lines: list[str] = []
    for raw in text.splitlines():
        m = _PLUTO_DEBUG.match(raw)
        body = m.group(1) if m is not None else ""
        row = _PLUTO_HEX.match(body)
        if row is not None and collecting:
            lines.append(raw)
            if collecting == "spi":
                spi, collecting = row.group(1).replace(" ", ""), ""
                continue
            keymat += row.group(1).replace(" ", "")
            if need and len(keymat) >= 2 * need:
                out.append(PlutoKeymat(spi, keymat[: 2 * need], list(lines)))
                collecting = ""
            continue
        if body == "SPI":
            collecting, spi, need, lines = "spi", "", 0, [raw]
        elif body.endswith(_PLUTO_RETURNS):
            collecting, keymat, lines = "keymat", "", [*lines, raw]
        elif (got := _PLUTO_NEED.match(body)) is not None:
            need = int(got.group(1))
            lines.append(raw)
        elif collecting == "keymat" and not need and keymat:
            # no length given: the first line that is not a row ends the value
            out.append(PlutoKeymat(spi, keymat, list(lines)))
            collecting = ""
        elif collecting:
            lines.append(raw)  # another thread's line inside the dump
    if collecting == "keymat" and not need and keymat:
        out.append(PlutoKeymat(spi, keymat, list(lines)))
    return out


def parse_fakesa_log(text: str) -> dict[str, EspKeys]:
    """Keys of the SAs a daemon handed the fakesa shim (tests/interop/fakesa.c), by SPI:
    ``fakesa KEYS proto 50 spi XXXXXXXX enc NAME HEX auth NAME HEX`` (``aead NAME HEX`` for
    GCM, its key with the 4-byte salt, and no integrity key), and ``encap TYPE SPORT DPORT``
    for UDP encapsulation.  A later add of an SPI wins."""
    out: dict[str, EspKeys] = {}
    for line in text.splitlines():
        words = line.split()
        if words[:2] != ["fakesa", "KEYS"] or len(words) < 6 or words[4] != "spi":
            continue
        keys: dict[str, str] = {}
        rest = words[6:]
        while len(rest) >= 3:
            if rest[0] == "encap" and len(rest) >= 4:
                keys["encap"] = " ".join(rest[1:4])
                rest = rest[4:]
                continue
            keys[rest[0]] = rest[2]
            rest = rest[3:]
        spi = words[5]
        out[spi] = EspKeys(spi, keys.get("enc", keys.get("aead", "")), keys.get("auth", ""),
                           keys.get("encap", ""))
    return out
