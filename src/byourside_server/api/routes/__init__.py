"""One router per resource: ``calls``, ``recordings``, ``webhooks`` (ext) and ``ops`` (healthz, metrics)."""
