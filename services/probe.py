"""One-shot clients that record every socket operation they make and what the kernel said.

``python3 -m services.probe KIND HOST PORT [ARGS...]`` runs one exchange and
prints a JSON transcript: each operation (connect, send, recv, sendto,
recvfrom, shutdown, close) with its time, addresses and outcome, either the
byte count or the errno name (ECONNREFUSED, EPIPE, ECONNRESET, ETIMEDOUT...).
The driver runs it inside the ``client`` host (``lab send --from client``) or
imports it to run on the Docker host; either way the outcome is observed, not
assumed.

KIND is tcp, udp, http or db.
"""

from __future__ import annotations

import errno
import json
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from services.resp import Error, ProtocolError, Reply, Simple, encode_command, parse_reply

T = TypeVar("T")
RECV_SIZE = 65536


@dataclass
class Event:
    t: float  # seconds since the transcript started (monotonic clock)
    op: str
    protocol: str
    local: str
    remote: str
    outcome: str  # "ok", "eof", an errno name, or "timeout"
    nbytes: int | None = None


@dataclass
class Transcript:
    kind: str
    target: str
    hostname: str = field(default_factory=socket.gethostname)
    events: list[Event] = field(default_factory=list)
    reply: str = ""
    error: str = ""
    started: float = field(default_factory=time.monotonic)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        del data["started"]
        return data


def outcome_of(exc: BaseException) -> str:
    """The name a student would look up: the errno name, or 'timeout'."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, socket.gaierror):
        return f"unresolved ({exc.strerror})"
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return type(exc).__name__


class Recorder:
    """Runs socket operations and records each one into a transcript."""

    def __init__(self, transcript: Transcript, protocol: str) -> None:
        self.transcript = transcript
        self.protocol = protocol

    def op(self, name: str, sock: socket.socket, remote: str, action: Callable[[], T]) -> T:
        t = time.monotonic() - self.transcript.started
        try:
            result = action()
        except OSError as exc:
            self._add(t, name, sock, remote, outcome_of(exc), None)
            raise
        nbytes = _size(result)
        outcome = "eof" if name.startswith("recv") and nbytes == 0 else "ok"
        self._add(t, name, sock, remote, outcome, nbytes)
        return result

    def _add(
        self, t: float, name: str, sock: socket.socket, remote: str, outcome: str, n: int | None
    ) -> None:
        try:
            host, port = sock.getsockname()[:2]
            local = f"{host}:{port}"
        except OSError:
            local = "?"
        self.transcript.events.append(
            Event(round(t, 6), name, self.protocol, local, remote, outcome, n)
        )


def _size(result: object) -> int | None:
    if isinstance(result, bytes):
        return len(result)
    if isinstance(result, tuple) and result and isinstance(result[0], bytes):
        return len(result[0])
    if isinstance(result, int):
        return result
    return None


def tcp_exchange(host: str, port: int, payload: bytes, timeout: float = 3.0) -> Transcript:
    """Connect, send, half-close, read until the server closes: the shout round trip."""
    t = Transcript("tcp", f"{host}:{port}")
    rec = Recorder(t, "tcp")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            ip = _resolve(host)
            remote = f"{ip}:{port}"
            rec.op("connect", s, remote, lambda: s.connect((ip, port)))
            rec.op("send", s, remote, lambda: _send_all(s, payload))
            rec.op("shutdown", s, remote, lambda: s.shutdown(socket.SHUT_WR))
            t.reply = _text(_read_to_eof(rec, s, remote))
        except OSError as exc:
            t.error = outcome_of(exc)
    return t


def udp_exchange(
    host: str, port: int, payload: bytes, timeout: float = 2.0, connected: bool = True
) -> Transcript:
    """Send one datagram and wait for one reply.

    A connected socket hears of an ICMP port-unreachable (ECONNREFUSED); an
    unconnected one only times out.
    """
    t = Transcript("udp", f"{host}:{port}")
    rec = Recorder(t, "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            address = (_resolve(host), port)
            remote = f"{address[0]}:{port}"
            if connected:
                rec.op("connect", s, remote, lambda: s.connect(address))
                rec.op("send", s, remote, lambda: s.send(payload))
                t.reply = _text(rec.op("recv", s, remote, lambda: s.recv(RECV_SIZE)))
            else:
                rec.op("sendto", s, remote, lambda: s.sendto(payload, address))
                data, _ = rec.op("recvfrom", s, remote, lambda: s.recvfrom(RECV_SIZE))
                t.reply = _text(data)
        except OSError as exc:
            t.error = outcome_of(exc)
    return t


def http_exchange(
    host: str, port: int, method: str, path: str, body: bytes = b"", timeout: float = 3.0
) -> Transcript:
    """One HTTP/1.1 request with Connection: close; the raw response is the reply."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    t = Transcript("http", f"{host}:{port}")
    rec = Recorder(t, "tcp")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            ip = _resolve(host)
            remote = f"{ip}:{port}"
            rec.op("connect", s, remote, lambda: s.connect((ip, port)))
            rec.op("send", s, remote, lambda: _send_all(s, head + body))
            t.reply = _text(_read_to_eof(rec, s, remote))
        except OSError as exc:
            t.error = outcome_of(exc)
    return t


def db_exchange(host: str, port: int, args: list[str], timeout: float = 3.0) -> Transcript:
    """One RESP command; the reply is shown the way redis-cli shows it."""
    t = Transcript("db", f"{host}:{port}")
    rec = Recorder(t, "tcp")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            ip = _resolve(host)
            remote = f"{ip}:{port}"
            rec.op("connect", s, remote, lambda: s.connect((ip, port)))
            frame = encode_command(*args)
            rec.op("send", s, remote, lambda: _send_all(s, frame))
            buf = b""
            while (parsed := parse_reply(buf)) is None:
                chunk = rec.op("recv", s, remote, lambda: s.recv(RECV_SIZE))
                if not chunk:
                    t.error = "eof"
                    return t
                buf += chunk
            t.reply = show_reply(parsed[0])
        except OSError as exc:
            t.error = outcome_of(exc)
        except ProtocolError as exc:
            t.error = exc.message
    return t


def show_reply(reply: Reply) -> str:
    """Render a RESP reply as redis-cli does."""
    if isinstance(reply, Simple):
        return reply.text
    if isinstance(reply, Error):
        return f"(error) {reply.text}"
    if isinstance(reply, int):
        return f"(integer) {reply}"
    if isinstance(reply, bytes):
        return json.dumps(reply.decode("utf-8", "backslashreplace"))
    if reply is None:
        return "(nil)"
    if not reply:
        return "(empty array)"
    if isinstance(reply, dict):
        return "\n".join(
            f"{i}# {k} => {show_reply(v)}" for i, (k, v) in enumerate(reply.items(), 1)
        )
    return "\n".join(f"{i}) {show_reply(item)}" for i, item in enumerate(reply, 1))


def _read_to_eof(rec: Recorder, s: socket.socket, remote: str) -> bytes:
    chunks = []
    while chunk := rec.op("recv", s, remote, lambda: s.recv(RECV_SIZE)):
        chunks.append(chunk)
    return b"".join(chunks)


def _send_all(s: socket.socket, data: bytes) -> int:
    s.sendall(data)
    return len(data)


def _resolve(host: str) -> str:
    return socket.gethostbyname(host)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


USAGE = """usage:
  probe tcp HOST PORT MESSAGE
  probe udp HOST PORT MESSAGE [--unconnected]
  probe http HOST PORT METHOD PATH [BODY]
  probe db HOST PORT COMMAND [ARG...]"""


def run(argv: list[str]) -> Transcript:
    if len(argv) < 4 or not argv[2].isdigit():
        raise ValueError(USAGE)
    kind, host, port, rest = argv[0], argv[1], int(argv[2]), argv[3:]
    if kind == "tcp" and len(rest) == 1:
        return tcp_exchange(host, port, rest[0].encode())
    if kind == "udp" and len(rest) in (1, 2):
        return udp_exchange(host, port, rest[0].encode(), connected="--unconnected" not in rest)
    if kind == "http" and len(rest) in (2, 3):
        body = rest[2].encode() if len(rest) == 3 else b""
        return http_exchange(host, port, rest[0].upper(), rest[1], body)
    if kind == "db":
        return db_exchange(host, port, rest)
    raise ValueError(USAGE)


def main() -> int:
    try:
        transcript = run(sys.argv[1:])
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    json.dump(transcript.to_json(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
