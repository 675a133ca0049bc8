"""The IPsec Domain of Interpretation (RFC 2407)."""
