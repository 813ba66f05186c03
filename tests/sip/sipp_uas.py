"""A real `sipp` user agent server, started per test on loopback, as the far end of our calls.

Scenarios are built here as SIPp XML: answer (echoing RTP back, or playing a
mu-law file), reject with a status code, ring until CANCEL, challenge with
digest auth, hang up from the far end. SIPp's exit code says whether the far
end saw the whole expected exchange (ACK, BYE, CANCEL...). SIPp signals over
UDP or, with ``transport="tcp"``, over one TCP connection (``-t t1``); this
Debian build has no TLS.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SIPP = shutil.which("sipp")

HEADERS = """[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>"""

RINGING = f"""<send><![CDATA[
SIP/2.0 180 Ringing
{HEADERS}
Content-Length: 0

]]></send>"""


def _ok(media_port: str) -> str:
    return f"""<send retrans="500"><![CDATA[
SIP/2.0 200 OK
{HEADERS}
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio {media_port} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16

]]></send>
<recv request="ACK" crlf="true"/>"""


BYE_RECEIVED = """<recv request="BYE"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>"""

BYE_SENT = """<send retrans="500"><![CDATA[
BYE [$contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To: [$caller]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>"""

# Remember who called (From) and where to send in-dialog requests (Contact) for a BYE of our own.
CAPTURE_CALLER = """<action>
  <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
  <ereg regexp="sip:[^;>]*" search_in="hdr" header="Contact:" assign_to="contact"/>
</action>"""


def _scenario(body: str) -> str:
    return f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="bys">\n{body}\n</scenario>\n'


def answer_echo(hold_ms: int | None = None) -> str:
    """Ring, answer, echo RTP (with -rtp_echo) and wait for our BYE; or hang up after ``hold_ms``."""
    tail = f'<pause milliseconds="{hold_ms}"/>\n{BYE_SENT}' if hold_ms else BYE_RECEIVED
    capture = CAPTURE_CALLER if hold_ms else ""  # sipp rejects captured variables that go unused
    return _scenario(f'<recv request="INVITE" crlf="true">{capture}</recv>\n{RINGING}\n{_ok("[media_port]")}\n'
                     f'{tail}')


def answer_play(audio_file: Path, after_ms: int = 1000, hangup_after_ms: int | None = None) -> str:
    """Answer, then after ``after_ms`` play a raw mu-law file over RTP; wait for our BYE, or send
    one ``hangup_after_ms`` after the playing started."""
    play = f'<pause milliseconds="{after_ms}"/>\n<nop><action><exec rtp_stream="{audio_file},1,0"/></action></nop>'
    tail = f'<pause milliseconds="{hangup_after_ms}"/>\n{BYE_SENT}' if hangup_after_ms else BYE_RECEIVED
    capture = CAPTURE_CALLER if hangup_after_ms else ""
    return _scenario(f'<recv request="INVITE" crlf="true">{capture}</recv>\n{RINGING}\n'
                     f'{_ok("[rtpstream_audio_port]")}\n{play}\n{tail}')


def reject(code: int, reason: str, delay_ms: int = 0) -> str:
    """Ring (after ``delay_ms`` of silence), then answer ``code`` and expect its ACK."""
    pause = f'<pause milliseconds="{delay_ms}"/>' if delay_ms else ""
    return _scenario(f"""<recv request="INVITE"/>
{pause}
{RINGING}
<send><![CDATA[
SIP/2.0 {code} {reason}
{HEADERS}
Content-Length: 0

]]></send>
<recv request="ACK"/>""")


def ring_until_cancel() -> str:
    return _scenario(f"""<recv request="INVITE"/>
{RINGING}
<recv request="CANCEL"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
<send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [cseq] INVITE
Content-Length: 0

]]></send>
<recv request="ACK"/>""")


def challenge_then_answer(username: str, password: str, status: int = 407) -> str:
    """Challenge the INVITE, verify the digest on the retry (403 if wrong), then answer and echo."""
    header = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    reason = "Proxy Authentication Required" if status == 407 else "Unauthorized"
    return _scenario(f"""<recv request="INVITE"/>
<send><![CDATA[
SIP/2.0 {status} {reason}
{HEADERS}
{header}: Digest realm="byourside.test", nonce="8f2a1c9e", qop="auth", algorithm=MD5
Content-Length: 0

]]></send>
<recv request="ACK"/>
<recv request="INVITE">
  <action><verifyauth assign_to="authvalid" username="{username}" password="{password}"/></action>
</recv>
<nop hide="true" test="authvalid" next="good"/>
<send next="end"><![CDATA[
SIP/2.0 403 Forbidden
{HEADERS}
Content-Length: 0

]]></send>
<label id="good"/>
{_ok("[media_port]")}
{BYE_RECEIVED}
<label id="end"/>""")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_listening(port: int) -> bool:
    """Something listens on TCP ``port`` (read from /proc, without connecting to it)."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return True  # not Linux: assume it is up
    return any(f":{port:04X}" == fields[1][-5:] and fields[3] == "0A" for fields in map(str.split, lines))


@dataclass
class Sipp:
    process: subprocess.Popen
    port: int
    media_port: int
    log: Path
    transport: str = "udp"

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port}" + ("" if self.transport == "udp" else f";transport={self.transport}")

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


def start_sipp(scenario_xml: str, workdir: Path, echo: bool = True, timeout_s: int = 120,
               transport: str = "udp") -> Sipp:
    assert SIPP is not None, "sipp is not installed (make sipp)"
    assert transport in ("udp", "tcp"), "this sipp has no TLS"
    scenario = workdir / "scenario.xml"
    scenario.write_text(scenario_xml)
    port, media_port = (free_udp_port() if transport == "udp" else free_tcp_port()), free_udp_port()
    log = workdir / "sipp.log"
    args = [SIPP, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port), "-mi", "127.0.0.1",
            "-mp", str(media_port), "-m", "1", "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error",
            "-trace_err", "-error_file", str(workdir / "sipp_errors.log"),
            "-trace_msg", "-message_file", str(workdir / "sipp_messages.log")]
    if transport == "tcp":
        args += ["-t", "t1"]
    if echo:
        args.append("-rtp_echo")
    handle = log.open("wb")
    process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    if transport == "tcp":  # over UDP our retransmissions cover sipp's start-up; a TCP connect would be refused
        deadline = time.monotonic() + 10
        while not tcp_listening(port) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    return Sipp(process, port, media_port, log, transport)


async def sipp_uac_call(port: int, number: str, workdir: Path, transport: str = "udp") -> int:
    """SIPp's built-in UAC places one call to 127.0.0.1:``port`` (INVITE, ACK, 1 s, BYE); its exit code."""
    import asyncio

    assert SIPP is not None, "sipp is not installed (make sipp)"
    local = free_tcp_port() if transport == "tcp" else free_udp_port()
    process = await asyncio.create_subprocess_exec(
        SIPP, "-sn", "uac", f"127.0.0.1:{port}", "-t", "t1" if transport == "tcp" else "u1", "-s", number,
        "-m", "1", "-i", "127.0.0.1", "-p", str(local), "-mp", str(free_udp_port()), "-d", "1000",
        "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err", "-error_file", str(workdir / "errors.log"),
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return await asyncio.wait_for(process.wait(), timeout=40)
