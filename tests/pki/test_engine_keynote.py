"""Two real engines with pki behind them: a policy whose licensee is a CA's key decides Quick
Mode through the certificate chain assertion, and KeyNote credentials carried in CERT payloads
(encoding 11) count only when their signature verifies (issue 6 acceptance)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from ike.events import Phase1Done, Phase2Done
from keynote import keys as kn_keys
from keynote.sign import sign_assertion
from pki import rsa_hex


def _engine_helpers():
    """tests/pki/test_engine.py's configuration and policy helpers (tests are no package)."""
    spec = importlib.util.spec_from_file_location(
        "pki_test_engine_helpers", Path(__file__).with_name("test_engine.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers = _engine_helpers()
ADDR = _helpers.ADDR

CA_KEY, OTHER_CA_KEY, SIGNER_KEY = 0, 1, 5
PEER_KEY = {"a": 3, "b": 4}


def run(kit, trees, licensee: dict[str, str]) -> tuple[list[type], list[type]]:
    """test_engine.run with the engines' wall clock at the kit's NOW, so the chain assertions'
    GMTTimeOfDay conditions (the certificates' validity) hold; the event types of a and b."""
    ev_a, ev_b, _a, _b = _helpers.run(
        kit, trees, licensee, wall_offset=kit.NOW.timestamp() - _helpers.START
    )
    return [type(e) for e in ev_a], [type(e) for e in ev_b]


@pytest.fixture
def cas(kit):
    """Two CAs, both trusted for authentication by both sides."""
    return {
        "example": kit.cert(kit.name("Example CA"), kit.key(CA_KEY), None, ca=True),
        "other": kit.cert(kit.name("Other CA", "Other"), kit.key(OTHER_CA_KEY), None, ca=True),
    }


def make_trees(kit, tmp_path, cas, issuer: dict[str, str]):
    """Each side trusts both CAs and holds its own certificate from cas[issuer[side]]."""
    out = {}
    for side in ("a", "b"):
        d = kit.Dirs(tmp_path / side)
        d.ca(cas["example"], "example.crt")
        d.ca(cas["other"], "other.crt")
        k = kit.key(PEER_KEY[side])
        mine = kit.cert(kit.name(ADDR[side]), k, cas[issuer[side]], san=[kit.ip_san(ADDR[side])])
        d.put("certs", "local.crt", mine.pem)
        d.private_key(k)
        out[side] = d
    return out


def ca_principal(kit, n: int) -> str:
    return rsa_hex(kit.key(n).public_key())


def test_ca_key_licensee_accepts_peers_that_ca_certified(kit, tmp_path, cas):
    trees = make_trees(kit, tmp_path, cas, {"a": "example", "b": "example"})
    ca = ca_principal(kit, CA_KEY)
    assert ca.startswith("rsa-hex:3082")  # PKCS#1 DER in lowercase hex, as libkeynote prints
    ev_a, ev_b = run(kit, trees, {"a": ca, "b": ca})
    assert ev_a == [Phase1Done, Phase2Done]
    assert ev_b == [Phase1Done, Phase2Done]


def test_ca_key_licensee_refuses_a_peer_of_another_trusted_ca(kit, tmp_path, cas, caplog):
    trees = make_trees(kit, tmp_path, cas, {"a": "other", "b": "example"})
    ca = ca_principal(kit, CA_KEY)
    with caplog.at_level(logging.DEBUG):
        ev_a, ev_b = run(kit, trees, {"a": ca, "b": ca})
    assert ev_b[:1] == [Phase1Done]  # the other CA is trusted for authentication
    assert Phase2Done not in ev_a + ev_b  # but the policy's CA did not certify a
    refusal = next(r for r in caplog.records if "failed policy check" in r.getMessage())
    assert refusal.getMessage().startswith("B check_policy")
    assert "Action authorizers: DN:/C=SE/O=Example/CN=10.0.0.1" in refusal.getMessage()
    assert ca[:40] in refusal.getMessage()  # the trace names the licensee that was not reached
    assert "NO_PROPOSAL_CHOSEN" in caplog.text


def _private_text(k) -> str:
    n = k.private_numbers()
    pub = n.public_numbers
    return kn_keys.encode_private_key(
        kn_keys.RSAPrivateKey(pub.n, pub.e, n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp)
    )


def credential(kit, licensee_key: int) -> str:
    """SIGNER_KEY delegates IPsec policy to licensee_key, signed as `keynote sign` does."""
    signer = kit.key(SIGNER_KEY)
    body = (
        "KeyNote-Version: 2\n"
        f'Authorizer: "{rsa_hex(signer.public_key())}"\n'
        f'Licensees: "{rsa_hex(kit.key(licensee_key).public_key())}"\n'
        'Conditions: app_domain == "IPsec policy" && esp_present == "yes" -> "true";\n'
        "Signature: "
    )
    sig = sign_assertion(body + "\n", "sig-rsa-sha1-hex:", _private_text(signer))
    return f'{body}"{sig}"\n'


def tamper(assertion: str) -> str:
    """Flip the signature's last hex digit."""
    head, sig = assertion.rstrip('"\n').rsplit(":", 1)
    last = "0" if sig[-1] != "0" else "1"
    return f'{head}:{sig[:-1]}{last}"\n'


def with_credentials(kit, tmp_path, cas, tampered: bool = False):
    """Both sides certified by the example CA and sending a credential from SIGNER_KEY."""
    trees = make_trees(kit, tmp_path, cas, {"a": "example", "b": "example"})
    for side in ("a", "b"):
        text = credential(kit, PEER_KEY[side])
        if tampered and side == "a":
            text = tamper(text)
        trees[side].put("keynote", f"{ADDR[side]}/credentials", text.encode())
    return trees


def test_signed_keynote_credential_decides_quick_mode(kit, tmp_path, cas):
    trees = with_credentials(kit, tmp_path, cas)
    signer = ca_principal(kit, SIGNER_KEY)
    ev_a, ev_b = run(kit, trees, {"a": signer, "b": signer})
    assert ev_a == [Phase1Done, Phase2Done]
    assert ev_b == [Phase1Done, Phase2Done]


def test_tampered_keynote_credential_does_not_count(kit, tmp_path, cas, caplog):
    trees = with_credentials(kit, tmp_path, cas, tampered=True)
    signer = ca_principal(kit, SIGNER_KEY)
    with caplog.at_level(logging.INFO):
        ev_a, ev_b = run(kit, trees, {"a": signer, "b": signer})
    # a's certificate still authenticates it, but without the credential's delegation the
    # policy, which trusts only the signer, refuses a's Quick Mode.
    assert ev_b[:1] == [Phase1Done]
    assert Phase2Done not in ev_a + ev_b
    assert (
        "pki: KeyNote credentials not used: CERT payload 2 from IPV4_ADDR 10.0.0.1: "
        "KeyNote assertion 1 signature does not verify"
    ) in caplog.text
    assert "B check_policy: negotiated SA failed policy check" in caplog.text


def test_tampered_keynote_credential_alone_fails_phase_1(kit, tmp_path, cas, caplog):
    """Without a certificate to fall back on, the refused credential leaves no key for a."""
    trees = with_credentials(kit, tmp_path, cas, tampered=True)
    (trees["a"].root / "certs" / "local.crt").unlink()
    signer = ca_principal(kit, SIGNER_KEY)
    with caplog.at_level(logging.INFO):
        ev_a, ev_b = run(kit, trees, {"a": signer, "b": signer})
    assert Phase1Done not in ev_b
    assert Phase2Done not in ev_a + ev_b
    assert "pki: peer IPV4_ADDR 10.0.0.1 not authenticated" in caplog.text
    assert "KeyNote assertion 1 signature does not verify" in caplog.text
