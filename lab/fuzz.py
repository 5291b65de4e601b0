"""A network fuzzer for the lab's services: bad input, from the Docker host, bounded.

Each campaign sends a fixed number of inputs, drawn from a seeded generator so a
run replays exactly, to one service through its published port: random bytes,
truncated and oversized frames, invalid UTF-8, NUL bytes, endless lines, resets
in the middle of a request, half-open connections, a slow sender, and a burst of
connections at once. It counts what came back (answers, error replies, silence,
resets) and then checks that the service still answers a normal request and
that its process never restarted: the only acceptable number of crashes is zero.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.engine.stack import Lab
from services.protocols.resp import encode_command

TIMEOUT = 1.0
KINDS = (
    "random",
    "truncated",
    "oversized",
    "bad-utf8",
    "nul",
    "long-line",
    "reset",
    "half-open",
    "slow",
    "burst",
)

# A well-formed request per service: the fuzzer mutates these, and checks health with them.
VALID: dict[str, bytes] = {
    "tcp-shout": "héllo".encode(),
    "udp-shout": b"hello",
    "db": encode_command("SET", "fuzz", "value"),
    "http": b"PUT /kv/fuzz HTTP/1.1\r\nHost: lab\r\nContent-Length: 5\r\n\r\nvalue",
}
PORTS = {
    "tcp-shout": (8080, "tcp"),
    "udp-shout": (8080, "udp"),
    "db": (6379, "tcp"),
    "http": (80, "tcp"),
}


@dataclass
class Campaign:
    service: str
    inputs: int
    seed: int
    outcomes: Counter[str] = field(default_factory=Counter)
    crashes: int = 0
    healthy_after: bool = False

    def line(self) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"fuzz {self.service}: {self.inputs} inputs (seed {self.seed}): {shown}; "
            f"crashes {self.crashes}; answers normally afterwards: "
            f"{'yes' if self.healthy_after else 'NO'}"
        )


def generate(kind: str, valid: bytes, rng: random.Random) -> bytes:
    """One malformed input of the given kind, built from a valid one."""
    if kind == "random":
        return rng.randbytes(rng.randint(1, 2048))
    if kind == "truncated":
        return valid[: rng.randint(0, max(0, len(valid) - 1))]
    if kind == "oversized":
        return valid + rng.randbytes(1) * rng.randint(1 << 20, 2 << 20)
    if kind == "bad-utf8":
        return b"\xff\xfe\xc3(\xe2\x82" + valid + b"\xed\xa0\x80"
    if kind == "nul":
        return valid.replace(b" ", b"\x00") + b"\x00" * rng.randint(1, 64)
    if kind == "long-line":
        return b"A" * rng.randint(70_000, 200_000)
    if kind == "half-open":
        return valid[: len(valid) // 2]
    return valid  # reset, slow, burst: valid bytes, hostile manners


def _classify(reply: bytes, service: str) -> str:
    if not reply:
        return "silence or close"
    if service == "db" and reply.startswith(b"-"):
        return "error reply"
    if service == "http" and reply[9:10] in (b"4", b"5"):
        return "error reply"
    return "answer"


def _tcp(port: int, payload: bytes, kind: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        if kind == "reset":
            s.sendall(payload[: max(1, len(payload) // 2)])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return b""
        if kind == "slow":
            for i in range(min(len(payload), 5)):
                s.sendall(payload[i : i + 1])
                time.sleep(0.02)
            payload = payload[5:]
        s.sendall(payload)
        if kind == "half-open":
            # Leave the request unfinished and the connection open: only wait a little.
            s.settimeout(0.2)
        else:
            with contextlib.suppress(OSError):  # the server may have closed already
                s.shutdown(socket.SHUT_WR)  # our FIN: it answers what it can, then closes
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
                if sum(map(len, chunks)) > 1 << 20:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def _udp(port: int, payload: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", port))
        try:
            s.send(payload[:65507])
            return s.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            return b""


def _udp_send(port: int, payload: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(payload, ("127.0.0.1", port))


def _burst(port: int, count: int) -> None:
    sockets = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
    finally:
        for s in sockets:
            s.close()


def _start_marker(lab: Lab, service: str) -> tuple[str, int]:
    state = lab.container(service).attrs["State"]
    return str(state.get("StartedAt")), int(lab.container(service).attrs.get("RestartCount", 0))


def run_campaign(
    lab: Lab, service: str, inputs: int, seed: int, progress: Callable[[str], None] | None = None
) -> Campaign:
    container_port, protocol = PORTS[service]
    port = lab.published_port(service, container_port, protocol)
    rng = random.Random(seed)
    campaign = Campaign(service, inputs, seed)
    before = _start_marker(lab, service)
    valid = VALID[service]
    for i in range(inputs):
        kind = KINDS[i % len(KINDS)]
        try:
            if protocol == "udp" and kind == "burst":
                for _ in range(100):
                    _udp_send(port, rng.randbytes(rng.randint(0, 512)))
                reply = _udp(port, valid)
                outcome = "burst served" if reply == valid.upper() else "burst dropped"
                campaign.outcomes[outcome] += 1
                continue
            if protocol == "udp":
                reply = _udp(port, generate(kind, valid, rng))
            elif kind == "burst":
                _burst(port, 100)
                reply = b"x"
            else:
                reply = _tcp(port, generate(kind, valid, rng), kind)
            outcome = "burst served" if kind == "burst" else _classify(reply, service)
        except ConnectionResetError:
            outcome = "reset by server"
        except OSError as exc:  # the server closed on us mid-send (an oversized request, say)
            outcome = type(exc).__name__
        campaign.outcomes[outcome] += 1
        if progress and i % 50 == 0:
            progress(f"{service}: {i}/{inputs}")
    after = _start_marker(lab, service)
    state = lab.states()[service]
    campaign.crashes = int(after != before or state.status != "running")
    campaign.healthy_after = _answers_normally(port, protocol, service)
    return campaign


HEALTH_CHECK = {
    "tcp-shout": (b"ok", b"OK"),
    "db": (b"PING\r\nQUIT\r\n", b"+PONG"),
    "http": (b"GET /healthz HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n", b"HTTP/1.1 200"),
}


def _answers_normally(port: int, protocol: str, service: str) -> bool:
    try:
        if protocol == "udp":
            return _udp(port, b"still there?") == b"STILL THERE?"
        request, expected = HEALTH_CHECK[service]
        return _tcp(port, request, "normal").startswith(expected)
    except OSError:
        return False
