"""SIP over TCP and TLS (RFC 3261 section 18.3): connections, and messages framed by Content-Length.

One ``StreamTransport`` per user agent. ``send`` goes over the connection to
the destination, opening one on demand and reusing it afterwards; when the
user agent listens, connections the far end opens to us are accepted, and what
arrives on them is answered on them. A connection is known by the address it
was opened to (ours) or comes from (theirs), and each message received on it
carries that address as its source, so responses and in-dialog requests find
the same connection again.

Between messages, CRLF keep-alives (RFC 5626 section 3.5.1) are skipped. A
stream that does not frame as SIP (a start line that is not SIP, a bad
Content-Length, a message over ``MAX_MESSAGE_BYTES``, a header that does not
parse) cannot be resynchronised, so its connection is closed.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl

import structlog

from byourside_server.telephony.sip.message import SipParseError, ascii_number, parse
from byourside_server.telephony.sip.transport import Address, Receiver

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 65536
CONNECT_TIMEOUT = 10.0  # seconds to set up a connection (and TLS handshake) before the send fails
# A request line (method token, URI, version) or a status line.
START_LINE = re.compile(rb"(SIP/2\.0 \d{3}( .*)?|[A-Za-z0-9.!%*_+`'~-]+ \S+ SIP/2\.0)")


class FramingError(SipParseError):
    pass


def content_length(head: bytes) -> int:
    """The Content-Length of a message head (start line and headers); 0 when absent."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            length = ascii_number(value.strip().decode("ascii", "replace"))
            if length is None:
                raise FramingError("bad Content-Length")
            return length
    return 0


class StreamFramer:
    """Cuts a byte stream into whole SIP messages: ``feed`` what arrives, then take ``next_message`` until None."""

    def __init__(self, max_size: int = MAX_MESSAGE_BYTES) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> bytes | None:
        """The next complete message, or None until more bytes arrive; FramingError when the stream is not SIP."""
        buffer = self._buffer
        keep_alive = len(buffer) - len(buffer.lstrip(b"\r\n"))
        if keep_alive:
            del buffer[:keep_alive]
        line_end = buffer.find(b"\r\n")
        if line_end >= 0 and not START_LINE.fullmatch(bytes(buffer[:line_end])):
            raise FramingError("not a SIP start line")
        if buffer and not buffer[:1].isalpha():  # a method or "SIP/2.0": no need to wait for the line's end
            raise FramingError("not a SIP start line")
        head_end = buffer.find(b"\r\n\r\n")
        if head_end < 0:
            if len(buffer) > self.max_size:
                raise FramingError("message head too long")
            return None
        size = head_end + 4 + content_length(bytes(buffer[:head_end]))
        if size > self.max_size:
            raise FramingError("message too large")
        if len(buffer) < size:
            return None
        message = bytes(buffer[:size])
        del buffer[:size]
        return message


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection: writes queued until it is up, messages framed and handed on."""

    def __init__(self, owner: StreamTransport, key: Address | None = None) -> None:
        self.owner = owner
        self.key = key  # the address it was opened to; for an accepted one, the far end's (set when made)
        self.transport: asyncio.Transport | None = None
        self.opened = asyncio.Event()  # set when connected, or when connecting failed (``error``)
        self.error: OSError | None = None
        self.closed = False
        self._framer = StreamFramer()
        self._pending: list[bytes] = []

    @property
    def local_port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.key is None:
            peer = transport.get_extra_info("peername")
            self.key = (peer[0], peer[1])
            self.owner.accepted(self)
        for data in self._pending:
            self.transport.write(data)
        self._pending.clear()
        self.opened.set()

    def failed(self, error: OSError) -> None:
        self.error, self.closed = error, True
        self._pending.clear()
        self.opened.set()

    def send(self, data: bytes) -> None:
        if self.transport is None:
            if not self.closed:
                self._pending.append(data)
        elif not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self._framer.feed(data)
        while self.transport is not None and not self.closed:
            try:
                frame = self._framer.next_message()
                if frame is None:
                    return
                message = parse(frame)
            except SipParseError as exc:
                log.info("sip_stream_garbled", transport=self.owner.name, error=str(exc))
                self.close()
                return
            assert self.key is not None
            self.owner.receiver.message_received(message, self.key)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.owner.lost(self)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self.owner.lost(self)


class StreamTransport:
    """SIP over TCP, or over TLS (``client_tls`` verifies the servers we connect to); listens when asked."""

    reliable = True

    def __init__(self, receiver: Receiver, client_tls: ssl.SSLContext | None = None) -> None:
        self.receiver = receiver
        self.client_tls = client_tls  # None: plain TCP
        self.name = "TLS" if client_tls is not None else "TCP"
        self.server: asyncio.Server | None = None
        # The name a TLS server's certificate must carry: the host name its address was resolved from,
        # else ``server_name`` (the trunk's: a Contact or Record-Route often names one of its IPs), else the IP.
        self.server_names: dict[Address, str] = {}
        self.server_name: str | None = None
        self._connections: dict[Address, StreamConnection] = {}
        self._opening: set[asyncio.Task] = set()
        self._closed = False

    @classmethod
    async def open(cls, receiver: Receiver, host: str, port: int, *, client_tls: ssl.SSLContext | None = None,
                   server_tls: ssl.SSLContext | None = None, listen: bool = True) -> StreamTransport:
        """TCP when ``client_tls`` is None, else TLS; a TLS listener needs ``server_tls`` (our certificate)."""
        assert not (listen and client_tls is not None and server_tls is None), "a TLS listener needs a certificate"
        transport = cls(receiver, client_tls)
        if listen:
            loop = asyncio.get_running_loop()
            transport.server = await loop.create_server(lambda: StreamConnection(transport), host, port,
                                                        family=socket.AF_INET, ssl=server_tls)
        return transport

    @property
    def port(self) -> int:
        """The listening port; 0 when we do not listen (Via and Contact then carry a connection's own port)."""
        if self.server is None or not self.server.sockets:
            return 0
        return self.server.sockets[0].getsockname()[1]

    def send(self, data: bytes, dest: Address) -> None:
        if not self._closed:
            self._connection(dest).send(data)

    async def connect(self, dest: Address) -> int:
        """Open (or reuse) the connection to ``dest``; the local port Via and Contact should carry.

        Raises OSError (ssl.SSLError for a failed handshake) when ``dest`` cannot be reached."""
        if self._closed:
            raise ConnectionAbortedError("transport closed")
        conn = self._connection(dest)
        await conn.opened.wait()
        if conn.error is not None:
            raise conn.error
        return self.port or conn.local_port

    def _connection(self, dest: Address) -> StreamConnection:
        conn = self._connections.get(dest)
        if conn is None or conn.closed:
            conn = StreamConnection(self, dest)
            self._connections[dest] = conn
            task = asyncio.get_running_loop().create_task(self._open(conn, dest))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)
        return conn

    async def _open(self, conn: StreamConnection, dest: Address) -> None:
        host, port = dest
        tls: dict = {}
        if self.client_tls is not None:
            name = self.server_names.get(dest) or self.server_name or host
            tls = {"ssl": self.client_tls, "server_hostname": name}
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: conn, host, port, **tls), CONNECT_TIMEOUT)
        except asyncio.CancelledError:
            conn.failed(ConnectionAbortedError("transport closed"))
            raise
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake or certificate rejected
            log.warning("sip_connect_failed", transport=self.name, error=str(exc) or type(exc).__name__)
            conn.failed(exc)
            self.lost(conn)
            self.receiver.transport_failed(dest)

    def accepted(self, conn: StreamConnection) -> None:
        assert conn.key is not None
        self._connections[conn.key] = conn

    def lost(self, conn: StreamConnection) -> None:
        if conn.key is not None and self._connections.get(conn.key) is conn:
            del self._connections[conn.key]

    def close(self) -> None:
        self._closed = True
        if self.server is not None:
            self.server.close()
        for task in list(self._opening):
            task.cancel()
        for conn in list(self._connections.values()):
            conn.close()
