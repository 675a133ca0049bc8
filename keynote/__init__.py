"""KeyNote trust management (RFC 2704): parser, compliance checker, keys and signatures."""
