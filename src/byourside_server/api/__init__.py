"""HTTP edge: parsing, auth, error envelopes. Knows nothing of telephony."""
