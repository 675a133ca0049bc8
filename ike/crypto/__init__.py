"""IKEv1 cryptography: PRFs, key derivation, Phase 1 ciphers, Diffie-Hellman, signatures.

Modules (the names the rest of the daemon uses):

* :mod:`ike.crypto.rand`: ``RandomSource()`` (os entropy) and
  ``RandomSource.seeded(n)`` (reproducible); ``.bytes(n)``, ``.uint32()``.
* :mod:`ike.crypto.prf`: ``prf(hash, key, data)`` (HMAC), ``get_hash(id|name)``.
* :mod:`ike.crypto.keymat`: ``skeyid_psk/sig/pke``, ``Phase1Keys.derive``
  (SKEYID_d/_a/_e, Ka expanded per RFC 2409 appendix B, first IV),
  ``hash_i``/``hash_r``, ``phase2_iv``, ``qm_hash1/2/3``, ``info_hash``,
  ``qm_keymat``/``qm_sa_keys`` (per direction), ``natd_hash``.
* :mod:`ike.crypto.cipher`: ``CBC(enc_id, key)``, ``Keystate`` (isakmpd's IV
  chain), ``negotiated_key_length``, ``pad``.
* :mod:`ike.crypto.dh`: ``group(id)`` -> ``Group`` with ``generate(rand)`` and
  ``shared_secret(private, peer_public)``; ``DHError``.
* :mod:`ike.crypto.rsa`: ``sign``/``verify`` over the raw hash (no DigestInfo).
"""
