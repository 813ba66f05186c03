"""SIP messages (RFC 3261): parse what arrives, build what we send.

Only what an outbound user agent client needs: requests and responses with
ordered, case-insensitive headers (compact forms expanded), a body, and the
few header grammars we read (name-addr with tag, Via branch, CSeq, auth
challenges). Malformed input raises ``SipParseError``; the transport drops it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject"}
CANONICAL = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq", "contact": "Contact",
             "content-length": "Content-Length", "content-type": "Content-Type", "max-forwards": "Max-Forwards",
             "www-authenticate": "WWW-Authenticate", "proxy-authenticate": "Proxy-Authenticate",
             "authorization": "Authorization", "proxy-authorization": "Proxy-Authorization",
             "record-route": "Record-Route", "route": "Route", "user-agent": "User-Agent",
             "p-asserted-identity": "P-Asserted-Identity", "allow": "Allow", "supported": "Supported"}
MAGIC_COOKIE = "z9hG4bK"


def ascii_number(text: str, max_digits: int = 10) -> int | None:
    """``text`` as a non-negative integer of ASCII digits only, or None.

    ``str.isdigit`` also accepts digits such as "\u00b2" that ``int`` refuses, and
    ``int`` refuses more than 4,300 digits: a peer's text must never raise past the parser."""
    if not text or len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


class SipParseError(ValueError):
    pass


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


@dataclass
class SipMessage:
    """A request (``method`` and ``uri`` set) or a response (``status`` set)."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, value), in order
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def add(self, name: str, value: str) -> None:
        self.headers.append((name.lower(), value))

    def set(self, name: str, value: str) -> None:
        name = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k != name]
        self.headers.append((name, value))

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.get("cseq") or ""
        parts = raw.split()
        number = ascii_number(parts[0]) if len(parts) == 2 else None
        if number is None:
            raise SipParseError("bad CSeq")
        return number, parts[1].upper()

    @property
    def branch(self) -> str | None:
        via = self.get("via") or ""
        match = re.search(r";\s*branch=([^;,\s]+)", via)
        return match.group(1) if match else None

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    def encode(self) -> bytes:
        first = f"{self.method} {self.uri} SIP/2.0" if self.is_request else f"SIP/2.0 {self.status} {self.reason}"
        lines = [first]
        for key, value in self.headers:
            if key != "content-length":
                lines.append(f"{CANONICAL.get(key, key.title())}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def parse(data: bytes) -> SipMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("not UTF-8") from exc
    raw_lines = text.replace("\r\n", "\n").split("\n")
    if not raw_lines or not raw_lines[0]:
        raise SipParseError("empty message")
    lines: list[str] = []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()  # header folding
        elif line:
            lines.append(line)
    first = raw_lines[0].split(" ", 2)
    msg = SipMessage()
    if first[0] == "SIP/2.0":
        status = ascii_number(first[1], max_digits=3) if len(first) >= 2 else None
        if status is None:
            raise SipParseError("bad status line")
        msg.status, msg.reason = status, first[2] if len(first) > 2 else ""
    elif len(first) == 3 and first[2] == "SIP/2.0":
        msg.method, msg.uri = first[0].upper(), first[1]
    else:
        raise SipParseError("bad start line")
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError("bad header")
        key = name.strip().lower()
        msg.headers.append((COMPACT.get(key, key), value.strip()))
    length = ascii_number(msg.get("content-length") or "")
    msg.body = body[:length] if length is not None else body
    return msg


def tag_of(name_addr: str) -> str | None:
    match = re.search(r";\s*tag=([^;>\s]+)\s*$", name_addr) or re.search(r">.*;\s*tag=([^;\s]+)", name_addr)
    return match.group(1) if match else None


def uri_of(name_addr: str) -> str:
    """The URI inside ``"Name" <sip:...>;params`` or a bare ``sip:...;params``."""
    match = re.search(r"<([^>]+)>", name_addr)
    if match:
        return match.group(1)
    return name_addr.split(";", 1)[0].strip()


def host_port(uri: str, default_port: int = 5060) -> tuple[str, int]:
    """Host and port of a SIP URI (``sip:user@host:port;params``); DNS SRV is not consulted."""
    rest = uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    hostport = rest.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise ValueError("SIP URI without a host")
    return host, int(port) if port else default_port


def split_comma_list(value: str) -> list[str]:
    """Split a header value on commas outside quotes and angle brackets (Record-Route, Route)."""
    items, depth, quoted, current = [], 0, False, []
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        items.append("".join(current).strip())
    return items
