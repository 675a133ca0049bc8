"""IKEv1 cryptography: PRFs, key derivation, Phase 1 ciphers, Diffie-Hellman, signatures."""
