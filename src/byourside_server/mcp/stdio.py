"""``byourside mcp``: the MCP server over stdio, for desktop hosts and IDEs.

Configured from the environment like every client of the API: ``BYS_API_KEY`` (the
agent key) and ``BYS_BASE_URL`` (default ``http://127.0.0.1:8000``). stdout carries
the protocol only; diagnostics go to stderr.
"""

from __future__ import annotations

import os
import sys

import anyio
import byourside

from byourside_server.logs import configure_logging
from byourside_server.mcp.tools import build_mcp, quiet_mcp_loggers


def run_stdio() -> int:
    """Serve MCP on stdin/stdout until the host closes the pipe; 1 if no key is configured."""
    # Every log line (ours, structlog's default is stdout; the mcp package's) must go to stderr.
    configure_logging(os.environ.get("BYS_LOG_LEVEL") or "warning")
    quiet_mcp_loggers()
    try:
        client = byourside.Client(max_retries=2)
    except byourside.ByoursideError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    server = build_mcp(lambda ctx: client)
    try:
        anyio.run(server.run_stdio_async)
    except KeyboardInterrupt:
        return 130
    return 0
