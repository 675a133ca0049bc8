"""Real ESP inside User-Mode Linux: SAs and flows installed by our XfrmKernel carry a ping, and
two of our daemons negotiate and install them themselves.

One boot runs both scenarios (uml_esp_scenario.py: the backend alone; uml_daemons_scenario.py:
two isakmpd processes); each test below judges one case.  Needs root and the Debian package
user-mode-linux (CI has both).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.ipsec import ESP, IPSecIntegrityError, SecurityAssociation
from scapy.utils import checksum

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import esp_check  # noqa: E402  (helpers live beside the tests, not in a package)
import uml  # noqa: E402

pytestmark = [pytest.mark.uml, pytest.mark.root, pytest.mark.slow]
SCENARIOS = ("uml_esp_scenario.py", "uml_daemons_scenario.py")


def _boot_once(shared: Path) -> dict[str, Any]:
    """Run the scenario in UML once per test session, even with several xdist workers: the
    first worker boots, the others wait on the lock and read its results (``shared`` is the
    run's common pytest temp dir, cleaned by pytest)."""
    path = shared / "kx-uml-results.json"
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            result: dict[str, Any] = json.loads(path.read_text())
            return result
        script = " && ".join(f"{sys.executable} {HERE / name}" for name in SCENARIOS)
        res = uml.run_in_uml(["/bin/sh", "-c", script], timeout=240, cwd=str(HERE.parent.parent))
        result = {"rc": res.rc, "stdout": res.stdout, "stderr": res.stderr,
                  "console": res.console, "timing": {"wall": res.wall_seconds, **res.timing}}
        path.write_text(json.dumps(result))
        return result


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    reason = uml.available()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.getbasetemp()
    res = _boot_once(base.parent if "PYTEST_XDIST_WORKER" in os.environ else base)
    assert res["rc"] == 0, f"rc {res['rc']}\n{res['stderr'][-3000:]}\n{res['console'][-2000:]}"
    out = {}
    for line in res["stdout"].splitlines():
        obj = json.loads(line)
        out[obj["case"]] = obj
    out["_timing"] = res["timing"]
    return out


@pytest.mark.parametrize(("suite", "alg_text"), [
    ("aes-cbc-sha2-256", "auth-trunc hmac(sha256)"),
    ("aes-gcm-16", "aead rfc4106(gcm(aes))"),
    ("3des-sha1", "auth-trunc hmac(sha1)"),
])
def test_ping_crosses_esp(cases: dict[str, dict[str, Any]], suite: str, alg_text: str) -> None:
    assert cases["plain"]["received"] == 3
    c = cases[suite]
    assert "error" not in c, c
    assert c["received"] == 3
    assert c["out_packets"] >= 3 and c["in_packets"] >= 3 and c["back_packets"] >= 3
    assert alg_text in c["listing"]
    assert c["flushed"]


def test_sha256_truncated_to_128_and_gcm_icv_128(cases: dict[str, dict[str, Any]]) -> None:
    assert "hmac(sha256) 0x" in cases["aes-cbc-sha2-256"]["listing"]
    line = next(x for x in cases["aes-cbc-sha2-256"]["listing"].splitlines() if "sha256" in x)
    assert line.rstrip().endswith(" 128")
    gcm = next(x for x in cases["aes-gcm-16"]["listing"].splitlines() if "rfc4106" in x)
    key_hex = gcm.split()[2]
    assert len(key_hex) == 2 + 40 and gcm.rstrip().endswith(" 128")  # 16-byte key + 4 salt


@pytest.mark.parametrize("name", ["aes-cbc-sha2-256-tampered-auth", "aes-gcm-16-tampered-salt"])
def test_tampered_key_loses_traffic(cases: dict[str, dict[str, Any]], name: str) -> None:
    c = cases[name]
    assert "error" not in c, c
    assert c["received"] == 0 and c["proto_errors"] >= 1 and c["flushed"]


def test_ah_transport(cases: dict[str, dict[str, Any]]) -> None:
    c = cases["ah-sha2-256"]
    assert "error" not in c, c
    assert c["received"] == 3 and c["in_packets"] >= 3 and c["align4"] and c["flushed"]


def test_ipcomp_under_esp_bundle(cases: dict[str, dict[str, Any]]) -> None:
    """IPComp+ESP in tunnel mode: CPIs from the 16-bit range, both SAs count the pings, and the
    ESP SA carried far fewer bytes than the 1200-byte zero-filled pings: they were compressed."""
    c = cases["ipcomp-esp-bundle"]
    assert "error" not in c, c
    assert c["received"] == 3 and c["comp_packets"] >= 3 and c["esp_packets"] >= 3
    assert 0 < c["esp_bytes"] < 3 * 1200
    assert all(0x100 <= cpi <= 0xEFFF for cpi in c["cpis"]) and c["flushed"]


def test_ipv6_transport(cases: dict[str, dict[str, Any]]) -> None:
    c = cases["ipv6-aes-gcm-16"]
    assert "error" not in c, c
    assert c["received"] == 3 and c["in_packets"] >= 3 and c["flushed"]


def test_tunnel_with_natt_encapsulation(cases: dict[str, dict[str, Any]]) -> None:
    c = cases["aes-gcm-16-tunnel-natt"]
    assert "error" not in c, c
    assert c["received"] == 3 and c["in_packets"] >= 3 and c["espinudp"] and c["flushed"]


def test_nat_mapping_event_delivered(cases: dict[str, dict[str, Any]]) -> None:
    c = cases["nat-mapping"]
    assert "error" not in c, c
    assert c["events"] >= 1 and c["mapping"] == [c["spi"], "10.88.0.1", 4500, 4501]
    assert c["flushed"]


def test_on_demand_acquire_then_sas(cases: dict[str, dict[str, Any]]) -> None:
    c = cases["on-demand"]
    assert "error" not in c, c
    assert c["acquire"] and c["received"] >= 4  # the first ping or two wait for the SAs
    assert c["states_a"] == 2  # the larval state was replaced, not left beside the SA
    assert c["flushed"]


def test_soft_then_hard_expire_of_a_real_sa(cases: dict[str, dict[str, Any]]) -> None:
    c = cases["expire"]
    assert "error" not in c, c
    assert c["kinds"] == ["soft", "hard"] and set(c["spis"]) == {c["spi"]}
    assert not c["tracked_after"] and c["flushed"]


def test_inbound_sa_after_its_larval_spi_expired(cases: dict[str, dict[str, Any]]) -> None:
    c = cases["updsa-fallback"]
    assert "error" not in c, c
    assert c["kernel_sent_expiry"]  # the larval SA did expire, as the witness socket saw
    assert c["installed"] and c["still_tracked"] and not c["stale_expiry_passed_on"]
    assert c["flushed"]


def test_every_ipsec_module_loaded(cases: dict[str, dict[str, Any]]) -> None:
    assert cases["_timing"]["modules_failed"] == []


def _ping_payload(plain: bytes, next_header: int) -> None:
    assert next_header == 1  # ICMP (transport mode)
    assert plain[0] == 8  # echo request


@pytest.mark.parametrize("suite", ["aes-cbc-sha2-256", "aes-gcm-16", "3des-sha1"])
def test_captured_esp_decrypts_independently(cases: dict[str, dict[str, Any]],
                                             suite: str) -> None:
    """The ESP packets on the wire decrypt and authenticate with our own RFC-based code and the
    key blobs we gave the kernel: the salt really is appended, SHA-256 really truncated to 128."""
    c = cases[suite]
    assert len(c["esp"]) >= 3
    enc, auth = bytes.fromhex(c["enc_key"]), bytes.fromhex(c["auth_key"])
    for hexpkt in c["esp"]:
        pkt = bytes.fromhex(hexpkt)
        if suite == "aes-gcm-16":
            _ping_payload(*esp_check.decrypt_gcm(pkt, enc))
            with pytest.raises(esp_check.EspCheckError):  # salt first would be wrong
                esp_check.decrypt_gcm(pkt, enc[16:] + enc[:16])
        elif suite == "aes-cbc-sha2-256":
            _ping_payload(*esp_check.decrypt_cbc_hmac(pkt, enc, auth, "aes", "sha256", 16))
            with pytest.raises(esp_check.EspCheckError):  # the kernel's 96-bit default is wrong
                esp_check.decrypt_cbc_hmac(pkt, enc, auth, "aes", "sha256", 12)
        else:
            _ping_payload(*esp_check.decrypt_cbc_hmac(pkt, enc, auth, "3des", "sha1", 12))


#: suite -> (scapy crypt_algo, scapy auth_algo): the names scapy.layers.ipsec spells them
SCAPY_ALGS: dict[str, tuple[str, str | None]] = {
    "aes-cbc-sha2-256": ("AES-CBC", "SHA2-256-128"),
    "aes-gcm-16": ("AES-GCM", None),
    "3des-sha1": ("3DES", "HMAC-SHA1-96"),
}


def _flip(key: bytes, index: int) -> bytes:
    """One bit off (0x80: never a DES parity bit, which the cipher would ignore)."""
    return key[:index] + bytes([key[index] ^ 0x80]) + key[index + 1:]


def _scapy_sa(suite: str, spi: int, enc: bytes, auth: bytes) -> SecurityAssociation:
    crypt_algo, auth_algo = SCAPY_ALGS[suite]
    return SecurityAssociation(ESP, spi=spi, crypt_algo=crypt_algo, crypt_key=enc,
                               auth_algo=auth_algo, auth_key=auth if auth_algo else None)


@pytest.mark.parametrize("suite", ["aes-cbc-sha2-256", "aes-gcm-16", "3des-sha1"])
def test_captured_esp_decrypts_with_scapy(cases: dict[str, dict[str, Any]], suite: str) -> None:
    """A second, third-party opinion beside esp_check: scapy's ESP code, given exactly the key
    blobs we installed (GCM: key || 4-byte salt, as scapy also takes it), verifies each captured
    packet's ICV and yields the ping we sent from kx-a to kx-b; one key bit off fails in scapy."""
    c = cases[suite]
    assert len(c["esp"]) >= 3
    enc, auth = bytes.fromhex(c["enc_key"]), bytes.fromhex(c["auth_key"])
    seqs, ids = [], set()
    for hexpkt in c["esp"]:
        wire = IP(bytes.fromhex(hexpkt))
        assert wire.proto == 50 and wire.src == "10.88.0.1" and wire.dst == "10.88.0.2"
        spi = wire[ESP].spi
        inner = _scapy_sa(suite, spi, enc, auth).decrypt(wire)  # raises on a bad ICV
        assert inner.src == "10.88.0.1" and inner.dst == "10.88.0.2" and inner.proto == 1
        icmp = inner[ICMP]
        assert icmp.type == 8 and icmp.code == 0  # echo request
        assert bytes(icmp.payload)[16:] == bytes(range(16, 56))  # iputils ping's 56-byte fill
        good = bytes(icmp)
        assert checksum(good) == 0  # the ICMP checksum holds over the decrypted bytes
        plain, _ = (esp_check.decrypt_gcm(bytes.fromhex(hexpkt), enc) if suite == "aes-gcm-16"
                    else esp_check.decrypt_cbc_hmac(
                        bytes.fromhex(hexpkt), enc, auth, "aes" if "aes" in suite else "3des",
                        "sha256" if "sha2" in suite else "sha1", 16 if "sha2" in suite else 12))
        assert good == plain  # both decoders agree byte for byte
        seqs.append(icmp.seq)
        ids.add(icmp.id)
        if suite == "aes-gcm-16":
            for bad in (_flip(enc, 0), _flip(enc, len(enc) - 1)):  # key, then salt
                with pytest.raises(IPSecIntegrityError):
                    _scapy_sa(suite, spi, bad, auth).decrypt(IP(bytes.fromhex(hexpkt)))
        else:
            with pytest.raises(IPSecIntegrityError):
                _scapy_sa(suite, spi, enc, _flip(auth, 0)).decrypt(IP(bytes.fromhex(hexpkt)))
            try:  # the ICV still holds with a wrong cipher key, but the ping is lost
                wrong = bytes(_scapy_sa(suite, spi, _flip(enc, 0), auth).decrypt(
                    IP(bytes.fromhex(hexpkt)))[IP].payload)
            except Exception:  # garbage need not even parse
                wrong = b""
            assert wrong != good
    assert len(ids) == 1  # one ping process: "ping -c 3" sends echo seq 1, 2, 3
    assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize(("suite", "alg_text"), [
    ("aes-cbc-sha2-256", "auth-trunc hmac(sha256)"),
    ("aes-gcm-16", "aead rfc4106(gcm(aes))"),
    ("3des-sha1", "enc cbc(des3_ede)"),
])
def test_two_daemons_negotiate_and_ping_crosses(cases: dict[str, dict[str, Any]], suite: str,
                                                alg_text: str) -> None:
    """Main Mode PSK + Quick Mode between two isakmpd processes; each connection's SAs (tunnel
    mode, installed by the daemons through XfrmKernel) carry its ping."""
    c = cases["daemons"]
    assert "error" not in c, c
    assert c["negotiated"], c.get("log_a", "") + c.get("log_b", "")
    assert c["received"][suite] == 3, c.get("log_a", "")
    assert alg_text in c["states_a"] and "mode tunnel" in c["states_a"]
    assert len(c["packets_a"]) == len(c["packets_b"]) == 2 * len(c["suites"])
    assert min(c["packets_a"] + c["packets_b"]) >= 3


def test_soft_expiry_rekeys_without_losing_the_ping_stream(
        cases: dict[str, dict[str, Any]]) -> None:
    """Quick Mode lifetime 15 s: at the soft expiry (90 %) the initiator rekeys, traffic moves to
    the new SAs, the old ones go at their hard expiry; a ping stream across it loses nothing."""
    c = cases["daemons"]
    assert "error" not in c, c
    sent, received = c["stream"]
    # the responder has its inbound SA before the initiator sends on it, and the old SA retires
    # after a grace: no loss
    # string messages: pytest prints them whole (a tuple's repr is cut to one line)
    assert received == sent, _daemons_evidence(c)
    assert c["rekeyed"]
    before, after, common = c["spis"]
    # every original SA is gone; the new ones are there (a third generation may be starting)
    assert before == 2 * len(c["suites"]) and after >= before and common == 0, (
        f"SAs before/after/common {c['spis']}\n{_daemons_evidence(c)}")


def _daemons_evidence(c: dict[str, Any]) -> str:
    """What the daemons scenario kept of a failed stream or rekey: the kernel's drop counters,
    initiator's SAs after the stream, and both daemons' log tails."""
    return (f"xfrm_stat {c.get('xfrm_stat')}; stream ended {c.get('stream_ended')} s after "
            f"the start\n--- kx-a SAs after the stream\n{c.get('states_after', '')}\n"
            f"--- kx-b SAs\n{c.get('states_after_b', '')}\n--- log a\n{c.get('log_a', '')}\n"
            f"--- log b\n{c.get('log_b', '')}")


def test_daemons_remove_what_they_installed_on_shutdown(cases: dict[str, dict[str, Any]]) -> None:
    c = cases["daemons"]
    assert "error" not in c, c
    assert c["rc"] == [0, 0]
    assert c["left_after_stop"] == ["", "", "", ""]


def test_daemon_on_demand_from_acquire(cases: dict[str, dict[str, Any]]) -> None:
    """Flows from elsewhere, daemon a with -a: a ping's ACQUIRE starts the negotiation, the
    SAs replace the larval state, later pings cross; stopping removes the daemons' SAs only."""
    c = cases["daemons-on-demand"]
    assert "error" not in c, c
    assert c["ready"] and c["phase2_a"], c.get("log_a", "")
    # the first pings wait for the negotiation; from the first that crosses on, every one does
    seqs = c["reply_seqs"]
    assert seqs and seqs == list(range(seqs[0], c["pings"] + 1)), (seqs, c.get("log_a", ""))
    assert len(seqs) == c["received"] >= c["pings"] // 2, (seqs, c.get("log_a", ""))
    assert c["esp_states_a"] == 2 and not c["larval_left"]
    assert c["rc"] == [0, 0] and c["states_left"] == ["", ""]
    assert c["policies_left_a"] == 2  # -a: the flows were not the daemon's to remove
