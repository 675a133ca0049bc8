"""The Session API and the compliance checker (RFC 2704 section 5): delegation, K-of, cycles,
trusted and untrusted assertions, canonical principals, failures and traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from keynote import KeyNoteError, KeyNoteSyntaxError, Session
from keynote.session import FAILED_SIGNATURE, FAILED_SYNTAX

SIGNED = Path("/work/shared/vectors/keynote/signed")
if not SIGNED.is_dir():
    SIGNED = Path(__file__).resolve().parents[3] / "shared/vectors/keynote/signed"
TF = ["false", "true"]


def policy(licensees: str, conditions: str = "") -> str:
    text = f'Authorizer: "POLICY"\nLicensees: {licensees}\n'
    return text + (f"Conditions: {conditions}\n" if conditions else "")


def delegation(authorizer: str, licensees: str, conditions: str = "") -> str:
    text = f'Authorizer: "{authorizer}"\nLicensees: {licensees}\n'
    return text + (f"Conditions: {conditions}\n" if conditions else "")


def session(*trusted: str, authorizers: tuple[str, ...] = ("bob",)) -> Session:
    s = Session()
    for a in authorizers:
        s.add_authorizer(a)
    for t in trusted:
        s.add_assertions(t, trusted=True, source="t")
    return s


# ---- API

def test_ids_are_sequential_and_removable() -> None:
    s = Session()
    ids = s.add_assertions(policy('"a"') + "\n" + delegation("a", '"bob"'), trusted=True)
    assert ids == [0, 1]
    assert s.add_assertions(delegation("c", '"d"')) == [2]
    assert s.assertion_ids() == [0, 1, 2]
    s.add_authorizer("bob")
    assert s.query(TF).value == "true"
    s.remove_assertion(1)
    assert s.query(TF).value == "false"
    with pytest.raises(KeyNoteError):
        s.remove_assertion(1)


def test_policy_file_header_comments_are_skipped() -> None:
    s = Session()
    assert s.add_assertions("# isakmpd.policy\n# header\n\n" + policy('"bob"'), trusted=True) == [0]
    assert s.add_assertions("# nothing but comments\n") == []


def test_strict_add_is_atomic() -> None:
    s = Session()
    with pytest.raises(KeyNoteSyntaxError):
        s.add_assertions(policy('"a"') + "\nAuthorizer: (\n", trusted=True)
    assert s.assertion_ids() == []


def test_lenient_add_reports_syntax_failures() -> None:
    s = session()
    ids = s.add_assertions(policy('"bob"') + "\nAuthorizer: (\n", trusted=True, strict=False)
    assert ids == [0, 1]
    r = s.query(TF)
    assert r.value == "true"
    assert r.failed == [(1, FAILED_SYNTAX)]
    assert s.syntax_error(0) == ""
    assert s.syntax_error(1).startswith("<string>:4:13: Authorizer: unexpected '('")


def test_authorizers_and_attributes() -> None:
    s = session(policy('"bob"', 'x == "1";'))
    assert s.query(TF).value == "false"
    s.set_attribute("x", "1")
    assert s.query(TF).value == "true"
    s.clear_attributes()
    assert s.query(TF).value == "false"
    s.set_attribute_provider(lambda name: "1" if name == "x" else None)
    assert s.query(TF).value == "true"
    s.remove_authorizer("bob")
    assert s.query(TF).value == "false"
    with pytest.raises(KeyNoteError):
        s.remove_authorizer("bob")
    s.add_authorizer("bob")
    s.clear_authorizers()
    assert s.query(TF).value == "false"


@pytest.mark.parametrize("name", ["_x", "", "a-b", "_MIN_TRUST"])
def test_reserved_or_invalid_attribute_names(name: str) -> None:
    with pytest.raises(KeyNoteError):
        Session().set_attribute(name, "v")


def test_query_needs_values() -> None:
    with pytest.raises(KeyNoteError):
        Session().query([])


def test_non_strings_are_keynote_errors() -> None:
    s = Session()
    bad: object = 1
    with pytest.raises(KeyNoteError):
        s.query(["false", bad])  # type: ignore[list-item]
    with pytest.raises(KeyNoteError):
        s.set_attribute("x", bad)  # type: ignore[arg-type]
    with pytest.raises(KeyNoteError):
        s.add_authorizer(bad)  # type: ignore[arg-type]
    with pytest.raises(KeyNoteError):
        s.add_assertions(b'Authorizer: "a"\n')  # type: ignore[arg-type]


def test_no_policy_gives_min_trust() -> None:
    assert session(delegation("a", '"bob"')).query(TF).value == "false"


# ---- delegation, licensees, K-of

def test_delegation_chain() -> None:
    s = session(policy('"alice"'), delegation("alice", '"carol"'), delegation("carol", '"bob"'))
    assert s.query(TF).value == "true"
    s.clear_authorizers()
    s.add_authorizer("carol")
    assert s.query(TF).value == "true"
    s.clear_authorizers()
    s.add_authorizer("dave")
    assert s.query(TF).value == "false"


def test_licensees_and_or_min_max() -> None:
    v = ["no", "low", "high"]
    s = session(policy('"a" && "b"'), delegation("a", '"bob"', 'true -> "low";'),
                delegation("b", '"bob"'))
    assert s.query(v).value == "low"
    s = session(policy('"a" || "b"'), delegation("a", '"bob"', 'true -> "low";'),
                delegation("b", '"bob"'))
    assert s.query(v).value == "high"


def test_empty_licensees_is_min_and_missing_is_max() -> None:
    assert session('Authorizer: "POLICY"\nLicensees:\n').query(TF).value == "false"
    assert session('Authorizer: "POLICY"\n').query(TF).value == "true"


def test_k_of_counts_multiplicity() -> None:
    assert session(policy('2-of("bob", "bob", "x")')).query(TF).value == "true"
    assert session(policy('2-of("bob", "x", "y")')).query(TF).value == "false"
    s = session(policy('2-of("a", "b", "c")'), authorizers=("a", "c"))
    assert s.query(TF).value == "true"


def test_k_of_is_kth_highest_value() -> None:
    v = ["0", "1", "2", "3"]
    s = session(policy('2-of("a", "b", "c")'), delegation("a", '"bob"', 'true -> "1";'),
                delegation("b", '"bob"', 'true -> "3";'), delegation("c", '"bob"', 'true -> "2";'))
    assert s.query(v).value == "2"


def test_principals_from_attributes_and_constants() -> None:
    s = session(policy("who"))
    s.set_attribute("who", "bob")
    assert s.query(TF).value == "true"
    s = session('Authorizer: "POLICY"\nLicensees: $ref . "ob"\n')
    s.set_attribute("ref", "b0")
    s.set_attribute("b0", "b")
    assert s.query(TF).value == "true"


def test_authorizer_from_an_attribute() -> None:
    s = session('Authorizer: root\nLicensees: "bob"\n')
    assert s.query(TF).value == "false"
    s.set_attribute("root", "POLICY")
    assert s.query(TF).value == "true"


def test_policy_is_case_sensitive() -> None:
    assert session('Authorizer: "policy"\nLicensees: "bob"\n').query(TF).value == "false"


# ---- cycles: least fixpoint, order independent

def test_cycle_without_support_is_min_trust() -> None:
    s = session(policy('"a"'), delegation("a", '"b"'), delegation("b", '"a"'))
    assert s.query(TF).value == "false"


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_cycle_with_support_in_any_order(order: tuple[int, ...]) -> None:
    v = ["false", "maybe", "true"]
    parts = [policy('"alice"'), delegation("alice", '"carol"'),
             delegation("carol", '"alice" || "bob"', 'true -> "maybe";'),
             delegation("alice", '"bob"', 'false -> "true";')]
    s = session(*(parts[i] for i in order))
    assert s.query(v).value == "maybe"


def test_long_cycle_reaches_the_fixpoint() -> None:
    n = 50
    parts = [policy('"k0"')]
    parts += [delegation(f"k{i}", f'"k{(i + 1) % n}"') for i in range(n)]
    parts.append(delegation(f"k{n - 1}", '"bob"'))
    assert session(*parts).query(TF).value == "true"


@pytest.mark.timeout(60)
def test_ten_thousand_deep_chain_has_no_recursion_limit() -> None:
    n = 10_000
    text = "\n".join([policy('"k0"')] + [delegation(f"k{i}", f'"k{i + 1}"') for i in range(n)]
                     + [delegation(f"k{n}", '"bob"')])
    s = session(text)
    assert s.query(TF).value == "true"
    s.clear_authorizers()
    assert s.query(TF).value == "false"


# ---- trusted vs untrusted

def test_untrusted_policy_assertions_are_ignored() -> None:
    s = session()
    s.add_assertions(policy('"bob"'))
    assert s.query(TF).value == "false"


def test_unsigned_credential_counts_as_min_and_is_reported() -> None:
    s = session(policy('"alice"'))
    (aid,) = s.add_assertions(delegation("alice", '"bob"'))
    r = s.query(TF)
    assert r.value == "false"
    assert r.failed == [(aid, FAILED_SIGNATURE)]


def test_unreached_credential_is_not_checked() -> None:
    s = session(policy('"bob"'))
    s.add_assertions(delegation("alice", '"bob"'))
    assert s.query(TF).failed == []


def test_malformed_credential_does_not_poison_the_query() -> None:
    # Difference from the reference (reference/keynote.md 2.6 item 1): libkeynote fails the
    # whole query when any assertion's Authorizer does not parse, even an untrusted one.
    s = session(policy('"bob"'))
    s.add_assertions('Authorizer: ("x")\n', strict=False)
    r = s.query(TF)
    assert r.value == "true" and r.failed == [(1, FAILED_SYNTAX)]


def signed_session() -> Session:
    s = Session()
    for line in (SIGNED / "env").read_text().splitlines():
        name, _, value = line.partition(" = ")
        s.set_attribute(name, value.strip('"'))
    s.add_authorizer("bob")
    s.add_assertions((SIGNED / "policy-alice").read_text(), trusted=True, source="policy-alice")
    return s


@pytest.mark.parametrize("cred", ["cred-rsa-sha1-hex", "cred-rsa-md5-base64",
                                  "cred-dsa-sha1-hex", "cred-dsa-sha1-base64"])
def test_signed_credentials_from_the_reference(cred: str) -> None:
    s = signed_session()
    s.add_assertions((SIGNED / cred).read_text(), source=cred)
    r = s.query(TF)
    if cred.startswith("cred-dsa"):
        # signed by dave's DSA key, which policy-alice does not license
        assert r.value == "false"
    else:
        assert (r.value, r.failed) == ("true", [])


def test_tampered_credential_fails_its_signature() -> None:
    s = signed_session()
    (aid,) = s.add_assertions((SIGNED / "cred-rsa-sha1-hex-tampered").read_text())
    r = s.query(TF)
    assert (r.value, r.failed) == ("false", [(aid, FAILED_SIGNATURE)])


def test_credentials_are_authenticated_before_their_conditions_run() -> None:
    # Difference from the reference (reference/keynote.md 2.2 step 4): libkeynote evaluates a
    # reached credential's Conditions first and checks its signature only if they held, so a
    # forged credential gets its (attacker-written) Conditions run; here they never run.
    s = session(policy('"alice"'))
    s.set_attribute_provider(lambda name: pytest.fail(f"forged Conditions read {name}"))
    (aid,) = s.add_assertions(delegation("alice", '"bob"', 'secret == "x";'))
    r = s.query(TF)
    assert (r.value, r.failed) == ("false", [(aid, FAILED_SIGNATURE)])


def test_principals_compare_canonically() -> None:
    from keynote.keys import Encoding, decode_key, encode_key

    s = signed_session()
    pol = (SIGNED / "policy-alice").read_text()
    start = pol.index('"rsa-hex:')
    hexkey = pol[start:].split('"')[1].replace("\\\n", "").replace(" ", "")
    key = decode_key(hexkey)
    assert key is not None
    b64 = encode_key(key, Encoding.BASE64)
    assert b64 != hexkey
    s = Session()
    for line in (SIGNED / "env").read_text().splitlines():
        name, _, value = line.partition(" = ")
        s.set_attribute(name, value.strip('"'))
    s.add_authorizer("bob")
    s.add_assertions(policy(f'"{b64}"', 'app_domain == "IPsec policy";'), trusted=True)
    s.add_assertions((SIGNED / "cred-rsa-sha1-hex").read_text())
    assert s.query(TF).value == "true"


# ---- traces

def test_trace_explains_the_answer() -> None:
    s = session(policy('"alice"', 'x == "1" -> "true"; 1/0 == 1 -> "true";'),
                delegation("alice", '"bob"'))
    s.set_attribute("x", "1")
    r = s.query(TF, explain=True)
    assert r.trace is not None and r.value == "true"
    text = str(r.trace)
    assert text.splitlines()[0].startswith("Query result = true")
    assert "assertion 0 (t:1, trusted)" in text
    assert "line 3: x == \"1\" -> \"true\"; -> true" in text
    assert "runtime error (integer division by zero)" in text
    assert "'alice' = true" in text and "assertion 1 (t:1, trusted)" in text
    assert s.query(TF).trace is None


def test_trace_names_a_path_that_carries_the_answer() -> None:
    s = session(policy('"a" || "b"'), delegation("a", '"c"'), delegation("b", '"x"'),
                delegation("c", '"bob"'))
    r = s.query(TF, explain=True)
    assert r.trace is not None
    assert [step.split(" (")[0] for step in r.trace.because()] == [
        "assertion 0", "assertion 1", "assertion 3", "licenses action authorizer 'bob'"]
    assert "Because: assertion 0 (t:1) by 'POLICY' = true" in str(r.trace)
    s.clear_authorizers()
    r = s.query(TF, explain=True)
    assert r.trace is not None and r.trace.because() == []


def test_trace_and_fast_path_agree() -> None:
    s = session(policy('"a" || "b"'), delegation("a", '"c"', 'true -> "maybe";'),
                delegation("c", '"bob"'), delegation("b", '"a"'))
    v = ["false", "maybe", "true"]
    assert s.query(v).index == s.query(v, explain=True).index == 1


def test_trace_of_a_failed_signature_and_a_deep_chain() -> None:
    s = session(policy('"alice"'))
    s.add_assertions(delegation("alice", '"bob"'), source="cred")
    text = str(s.query(TF, explain=True).trace)
    assert "credential" in text and "signature does not verify" in text
    assert "Failed assertion 1: signature" in text
    n = 300
    chain = "\n".join([policy('"k0"')] + [delegation(f"k{i}", f'"k{i + 1}"') for i in range(n)]
                      + [delegation(f"k{n}", '"bob"')])
    lines = str(session(chain).query(TF, explain=True).trace).splitlines()
    assert max(len(line) for line in lines) < 200
    assert any("[depth 300]" in line for line in lines)


def test_each_assertion_of_a_multi_assertion_text_is_verified_alone() -> None:
    # isakmpd's keynote_cert_validate verifies the whole payload for every assertion in it
    # (reference/keynote.md 7.3), accepting unsigned assertions that follow a signed one.
    cred = (SIGNED / "cred-rsa-sha1-hex").read_text()
    authorizer = cred[cred.index("Authorizer:") : cred.index("Licensees:")]
    forged = authorizer + 'Licensees: "eve"\n'
    s = signed_session()
    s.clear_authorizers()
    s.add_authorizer("eve")
    ids = s.add_assertions(cred.rstrip("\n") + "\n\n" + forged, source="payload")
    r = s.query(TF)
    assert (r.value, r.failed) == ("false", [(ids[1], FAILED_SIGNATURE)])
    s.clear_authorizers()
    s.add_authorizer("bob")
    assert s.query(TF).value == "true"


def test_disk_cache_gives_the_same_assertions_without_parsing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keynote.parse

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = "# header\n\n" + policy('"alice"', 'x == "1" -> "true";') + "\n" + \
        delegation("alice", '"bob"')
    first = Session(cache=True)
    assert first.add_assertions(text, trusted=True, source="p") == [0, 1]
    assert len(list((tmp_path / "keynote-py").glob("ast-*.pickle"))) == 1

    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(keynote.parse, "parse_assertion", no_parsing)
    monkeypatch.setattr("keynote.session.parse_assertion", no_parsing)
    again = Session(cache=True)
    again.add_assertions(text, trusted=True, source="p")
    again.add_authorizer("bob")
    again.set_attribute("x", "1")
    r = again.query(TF, explain=True)
    assert r.value == "true" and "p:3" in str(r.trace)
    with pytest.raises(AssertionError, match="parsed again"):
        again.add_assertions(text, trusted=True, source="other-name")


def test_disk_cache_ignores_corrupt_entries(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = policy('"bob"')
    Session(cache=True).add_assertions(text, trusted=True)
    (entry,) = (tmp_path / "keynote-py").glob("ast-*.pickle")
    entry.write_bytes(b"garbage")
    s = session()
    s2 = Session(cache=True)
    s2.add_authorizer("bob")
    s2.add_assertions(text, trusted=True)
    assert s2.query(TF).value == "true" and s.query(TF).value == "false"


def test_same_text_is_parsed_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # The daemon makes a Session from the same policy text for every ISAKMP SA.
    text = policy('"alice"', 'x == "1" -> "true";') + "\n" + delegation("alice", '"bob"')
    Session().add_assertions(text, trusted=True, source="memo-test")

    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr("keynote.session.parse_assertion", no_parsing)
    again = Session()
    assert again.add_assertions(text, trusted=True, source="memo-test") == [0, 1]
    again.add_authorizer("bob")
    again.set_attribute("x", "1")
    r = again.query(TF, explain=True)
    assert r.value == "true" and "memo-test:5" in str(r.trace)
    with pytest.raises(AssertionError, match="parsed again"):
        Session().add_assertions(text, trusted=True, source="another-source")
