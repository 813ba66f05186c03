"""Package version (kept in one place; the User-Agent header uses it)."""

__version__ = "0.1.0"
