"""Fixtures for end-to-end tests (helpers in e2e_server.py)."""

from e2e_server import client, server  # noqa: F401  (fixtures)
