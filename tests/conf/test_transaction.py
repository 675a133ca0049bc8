"""Transactions for the FIFO ``C`` command (conf_begin / conf_set / conf_end)."""

from __future__ import annotations

import pytest

from ike.conf import Conf

TEXT = "[Phase 2]\nConnections=a,b\n[Peer]\nAddress=10.0.0.1\n"


def test_set_keeps_existing_tag_without_override() -> None:
    conf = Conf.from_text(TEXT)
    tx = conf.transaction()
    tx.set("Peer", "Address", "10.0.0.2")
    tx.set("Peer", "Port", "4500")
    assert conf.get_str("Peer", "Port") is None  # nothing happens before commit
    assert tx.commit() == ["duplicate tag [Peer]:Address, ignoring"]
    assert conf.get_str("Peer", "Address") == "10.0.0.1"
    assert conf.get_str("Peer", "Port") == "4500"


def test_set_with_override_and_builtin_counts_as_existing() -> None:
    conf = Conf.from_text(TEXT)
    with conf.transaction() as tx:
        tx.set("Peer", "Address", "10.0.0.2", override=True)
        tx.set("General", "Retransmits", "8")
    assert conf.get_str("Peer", "Address") == "10.0.0.2"
    assert conf.get_num("General", "Retransmits", 0) == 3
    with conf.transaction() as tx:
        tx.set("General", "Retransmits", "8", override=True)
    assert conf.get_num("General", "Retransmits", 0) == 8


def test_add_appends_once() -> None:
    conf = Conf.from_text(TEXT + "[X]\nL=p,\n")
    with conf.transaction() as tx:
        tx.add("Phase 2", "Connections", "c")
        tx.add("Phase 2", "Connections", "a")
        tx.add("Phase 2", "Passive-connections", "z")
        tx.add("X", "L", "q")
    assert conf.get_str("Phase 2", "Connections") == "a,b,c"
    assert conf.get_str("Phase 2", "Passive-connections") == "z"
    assert conf.get_str("X", "L") == "p,q"


def test_remove_value_and_emptied_tag() -> None:
    conf = Conf.from_text(TEXT)
    with conf.transaction() as tx:
        tx.remove_value("Phase 2", "Connections", "a")
    assert conf.get_list("Phase 2", "Connections") == ["b"]
    with conf.transaction() as tx:
        tx.remove_value("Phase 2", "Connections", "b")
    assert conf.get_str("Phase 2", "Connections") is None


def test_remove_tag_and_section_including_builtins() -> None:
    conf = Conf.from_text(TEXT)
    with conf.transaction() as tx:
        tx.remove("Peer", "Address")
        tx.remove("General", "Retransmits")
        tx.remove_section("QM-ESP-AES-SHA-PFS-SUITE")
        tx.remove_section("Phase 2")
    assert conf.get_str("Peer", "Address") is None
    assert conf.get_num("General", "Retransmits", 10) == 10
    assert conf.get_str("General", "Use-Keynote") == "yes"
    assert conf.get_tag_list("QM-ESP-AES-SHA-PFS-SUITE") == []
    assert conf.get_tag_list("Phase 2") == []
    with conf.transaction() as tx:
        tx.set("Phase 2", "Connections", "n")
    assert conf.get_list("Phase 2", "Connections") == ["n"]


def test_exception_aborts() -> None:
    conf = Conf.from_text(TEXT)
    with pytest.raises(RuntimeError), conf.transaction() as tx:
        tx.set("Peer", "Port", "1")
        raise RuntimeError("stop")
    assert conf.get_str("Peer", "Port") is None


def test_touches() -> None:
    conf = Conf.from_text(TEXT)
    tx = conf.transaction()
    tx.set("Peer", "Port", "1")
    assert not tx.touches("Phase 2", ("Connections", "Passive-connections"))
    tx.add("phase 2", "connections", "c")
    assert tx.touches("Phase 2", ("Connections", "Passive-connections"))


def test_user_bindings_for_the_report() -> None:
    conf = Conf.from_text(TEXT)
    assert list(conf.user_bindings()) == [
        ("Phase 2", [("Connections", "a,b")]),
        ("Peer", [("Address", "10.0.0.1")]),
    ]
