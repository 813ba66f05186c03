"""MCP server: the Agent Calling API as tools for MCP hosts.

``tools`` defines the tools once; ``stdio`` serves them for ``byourside mcp``;
``http`` mounts them at ``/mcp`` in ``byourside serve``. Nothing is imported here so
that mounting the endpoint does not load the ``mcp`` package until it is used.
"""
