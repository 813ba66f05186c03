"""The ``byourside`` command line (entry point ``byourside_server.cli:main``)."""

from byourside_server.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
