"""X.509 chains, CRLs and raw public keys for IKE authentication (imports nothing from ike)."""
