"""KeyNote trust management (RFC 2704): parser, compliance checker, keys and signatures.

    from keynote import Session
    s = Session()
    s.add_assertions(policy_text, trusted=True, source="isakmpd.policy")
    s.add_authorizer("passphrase:secret")
    s.set_attribute("app_domain", "IPsec policy")
    s.query(["false", "true"]).value

Session and Result are imported on first use, so `keynote.keys` or `keynote.sign` alone do not
load the parser (and Lark).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keynote.errors import KeyNoteError, KeyNoteSyntaxError

if TYPE_CHECKING:
    from keynote.session import Result, Session

__all__ = ["KeyNoteError", "KeyNoteSyntaxError", "Result", "Session"]


def __getattr__(name: str) -> Any:
    if name in ("Session", "Result"):
        from keynote import session

        return getattr(session, name)
    raise AttributeError(f"module 'keynote' has no attribute {name!r}")
