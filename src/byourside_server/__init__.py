"""byourside server: the Agent Calling API, its call runtime, and their adapters."""

__version__ = "0.1.0"

from byourside_server import logs as _logs  # noqa: E402,F401  (safe log rendering before configure_logging runs)
