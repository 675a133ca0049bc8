"""IKEv1 / ISAKMP (RFC 2407, 2408, 2409): wire codec, crypto, engine, daemon, kernel."""
