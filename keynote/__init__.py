"""KeyNote trust management (RFC 2704): parser, compliance checker, keys and signatures.

    from keynote import Session
    s = Session()
    s.add_assertions(policy_text, trusted=True, source="isakmpd.policy")
    s.add_authorizer("passphrase:secret")
    s.set_attribute("app_domain", "IPsec policy")
    s.query(["false", "true"]).value
"""

from keynote.errors import KeyNoteError, KeyNoteSyntaxError
from keynote.session import Result, Session

__all__ = ["KeyNoteError", "KeyNoteSyntaxError", "Result", "Session"]
