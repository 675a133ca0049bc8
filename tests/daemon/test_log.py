"""Debug classes, levels, the D T toggle and the isakmpd log line format."""

from __future__ import annotations

import io
import logging
import re

import pytest

from ike.daemon.log import (
    DEBUG_CLASSES,
    LOG_POLICY,
    DebugLevels,
    debug_class_of,
    log_debug,
    log_report,
    parse_debug_spec,
    setup_logging,
)


def test_eleven_classes() -> None:
    assert [n for n, _ in DEBUG_CLASSES] == [
        "Misc", "Transport", "Message", "Crypto", "Timer", "Sysdep", "SA", "Exchange",
        "Negotiation", "Policy", "FIFO user interface",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "cls"),
    [("ike.sa", 6), ("ike.exchange.quick", 7), ("keynote.session", 9), ("ike.wire.x", 2),
     ("other", 0), ("ike.daemon.fifo", 10), ("ike.sax", 0)],
)  # fmt: skip
def test_logger_to_class(name: str, cls: int) -> None:
    assert debug_class_of(name) == cls


def test_parse_debug_spec() -> None:
    assert parse_debug_spec("A=3") == (None, 3)
    assert parse_debug_spec("9=99") == (9, 99)
    with pytest.raises(ValueError):
        parse_debug_spec("-1=3")


def test_levels_and_toggle() -> None:
    levels = DebugLevels()
    levels.set(3, 40)
    levels.toggle()
    assert levels.levels == [0] * 11
    levels.toggle()
    assert levels.levels[3] == 40
    levels.set(None, 7)
    assert levels.levels == [7] * 11


def test_handler_filters_and_formats() -> None:
    out = io.StringIO()
    levels = DebugLevels()
    handler = setup_logging(True, levels, verbose=False, stream=out)
    try:
        logger = logging.getLogger("ike.policy.test")
        log_debug(logger, LOG_POLICY, 30, "hidden %d", 1)
        logger.info("hidden info")
        levels.set(LOG_POLICY, 30)
        log_debug(logger, LOG_POLICY, 30, "shown %d", 2)
        logger.debug("default level 50 stays hidden")
        logger.warning("always")
        log_report(logger, "a report line")
        handler.verbose = True
        logger.info("phase 1 done")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert [re.sub(r"^\d{6}\.\d{6} ", "", line) for line in lines] == [
        "Plcy 30 shown 2",
        "Default always",
        "Report> a report line",
        "Default phase 1 done",
    ]
