"""The server half every WebSocket provider fake shares: a ``websockets`` server on a free loopback port.

A fake sets ``PATH`` (what its URL ends with), handles each connection in ``_handle`` and may refuse a
handshake in ``_check`` (``process_request``: return a response to refuse, None to accept; it may be a
coroutine, e.g. to hold an upgrade until the test lets it through).
"""

from __future__ import annotations

from typing import Any, Self

from websockets.asyncio.server import Server, serve


class LoopbackWebSocketFake:
    PATH = "/"

    def __init__(self) -> None:
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.PATH}"

    async def start(self) -> Self:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check, max_size=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check(self, connection: Any, request: Any) -> Any:
        return None

    async def _handle(self, socket: Any) -> None:
        raise NotImplementedError
