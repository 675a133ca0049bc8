"""ISAKMP wire format (RFC 2408 section 3)."""
