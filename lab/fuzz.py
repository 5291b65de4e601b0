"""A network fuzzer for the lab's services: bad input, from the Docker host, bounded.

Each campaign sends a fixed number of inputs, drawn from a seeded generator so a
run replays exactly, to one port of one process through where it is published,
shaped by the protocol the process declares there (``socklab.ports``): random bytes,
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

from lab.backends.engine import Engine
from lab.errors import LabError, NotRunning, UsageError
from lab.services.protocols.resp import encode_command
from lab.topology import Endpoint, Topology

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

# A well-formed request per protocol: the fuzzer mutates these.
VALID: dict[str, bytes] = {
    "shout": "héllo".encode(),
    "echo": "héllo".encode(),
    "raw": b"hello",
    "resp": encode_command("SET", "fuzz", "value"),
    "http": b"PUT /kv/fuzz HTTP/1.1\r\nHost: lab\r\nContent-Length: 5\r\n\r\nvalue",
}
# After the campaign, a normal request and the start of its answer, per protocol (raw:
# any answer at all, or for UDP the port still bound: a datagram is not refused).
HEALTH_CHECK: dict[str, tuple[bytes, bytes]] = {
    "shout": (b"ok", b"OK"),
    "echo": (b"ok", b"ok"),
    "raw": (b"ok", b""),
    "resp": (b"PING\r\nQUIT\r\n", b"+PONG"),
    "http": (b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n", b"HTTP/1."),
}


def targets(topology: Topology, names: list[str]) -> list[Endpoint]:
    """What to fuzz: the named processes' declared ports (every declared port by default)."""
    if not names:
        return topology.endpoints()
    chosen = []
    for name in names:
        endpoint = topology.endpoint(name)
        if not endpoint.process:
            raise UsageError(f"{name} is no declared port of a process; fuzz a process by name")
        chosen.append(endpoint)
    return chosen


@dataclass
class Campaign:
    service: str  # the process, or PROCESS:PORT/TRANSPORT when it declares several
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


def _classify(reply: bytes, protocol: str) -> str:
    if not reply:
        return "silence or close"
    if protocol == "resp" and reply.startswith(b"-"):
        return "error reply"
    if protocol == "http" and reply[9:10] in (b"4", b"5"):
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


def _burst(port: int, count: int, valid: bytes) -> int:
    """``count`` connections opened at once, then each sends a valid request: how many got
    any answer (a burst nobody answered is not "served")."""
    sockets = []
    answered = 0
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        for s in sockets:
            with contextlib.suppress(OSError):
                s.sendall(valid)
                s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 2 * TIMEOUT  # for all of them: a silent server is quick
        for s in sockets:
            with contextlib.suppress(OSError):
                s.settimeout(max(0.01, deadline - time.monotonic()))
                answered += bool(s.recv(1))
    finally:
        for s in sockets:
            s.close()
    return answered


def _udp_alive(port: int) -> bool:
    """A datagram to the port is not refused (a connected socket hears ICMP unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.connect(("127.0.0.1", port))
        try:
            s.send(b"still there?")
            s.recv(65535)
        except TimeoutError:
            return True
        except ConnectionRefusedError:
            return False
    return True


def _start_marker(backend: Engine, service: str) -> tuple[str, int]:
    return backend.started(service)


def run_campaign(
    backend: Engine,
    endpoint: Endpoint,
    inputs: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> Campaign:
    """A campaign against one port, from where the port is published (the Docker host's
    127.0.0.1, or a test cluster machine's: lab/engine/netns.py)."""
    pid = backend.publisher_pid(endpoint.process)
    if pid is None:
        if not backend.beside_engine():  # 127.0.0.1 here is not where the ports are
            raise LabError(
                "fuzz sends from this machine to the lab's published ports, and this driver "
                "is not on the Docker Engine's machine (a container, or a remote engine)",
                "run `socklab fuzz` on the Docker host (docs/install.md)",
            )
        return _campaign(backend, endpoint, inputs, seed, progress)
    from lab.engine import netns

    return netns.run_in(pid, lambda: _campaign(backend, endpoint, inputs, seed, progress))


def _campaign(
    backend: Engine,
    endpoint: Endpoint,
    inputs: int,
    seed: int,
    progress: Callable[[str], None] | None,
) -> Campaign:
    service, protocol, transport = endpoint.process, endpoint.port.protocol, endpoint.port.transport
    try:
        port = backend.published_port(endpoint.host, endpoint.port.number, transport)
    except NotRunning:
        raise UsageError(
            f"{service}'s port {endpoint.port.number}/{transport} is not published on the "
            "Docker host, where the fuzzer runs",
            f"publish it from its host ({endpoint.host}), as in "
            f'ports: ["127.0.0.1::{endpoint.port.number}/{transport}"]',
        ) from None
    several = len(backend.topology.processes[service].ports) > 1
    name = f"{service}:{endpoint.port.number}/{transport}" if several else service
    rng = random.Random(seed)
    campaign = Campaign(name, inputs, seed)
    before = _start_marker(backend, service)
    valid = VALID[protocol]
    for i in range(inputs):
        kind = KINDS[i % len(KINDS)]
        try:
            if transport == "udp" and kind == "burst":
                for _ in range(100):
                    _udp_send(port, rng.randbytes(rng.randint(0, 512)))
                reply = _udp(port, valid)
                outcome = "burst served" if _answers(protocol, valid, reply) else "burst dropped"
                campaign.outcomes[outcome] += 1
                continue
            if transport == "udp":
                reply = _udp(port, generate(kind, valid, rng))
            elif kind == "burst":
                served = _burst(port, 100, valid)
                outcome = f"burst {served}/100 answered"
                campaign.outcomes["burst served" if served == 100 else outcome] += 1
                continue
            else:
                reply = _tcp(port, generate(kind, valid, rng), kind)
            outcome = _classify(reply, protocol)
        except ConnectionResetError:
            outcome = "reset by server"
        except OSError as exc:  # the server closed on us mid-send (an oversized request, say)
            outcome = type(exc).__name__
        campaign.outcomes[outcome] += 1
        if progress and i % 50 == 0:
            progress(f"{name}: {i}/{inputs}")
    after = _start_marker(backend, service)
    state = backend.states()[service]
    campaign.crashes = int(after != before or state.status != "running")
    campaign.healthy_after = _answers_normally(port, transport, protocol)
    return campaign


def _answers(protocol: str, request: bytes, reply: bytes) -> bool:
    """Whether ``reply`` is a normal answer to ``request`` in ``protocol``."""
    if protocol == "shout":
        return reply == request.decode("utf-8", "surrogateescape").upper().encode(
            "utf-8", "surrogateescape"
        )
    if protocol == "echo":
        return reply == request
    return bool(reply)


def _answers_normally(port: int, transport: str, protocol: str) -> bool:
    request, expected = HEALTH_CHECK[protocol]
    try:
        if transport == "udp":
            if protocol == "raw":  # nothing to expect back; refused would mean gone
                return _udp_alive(port)
            return _answers(protocol, request, _udp(port, request))
        reply = _tcp(port, request, "normal")
        return reply.startswith(expected) and (bool(reply) or protocol == "raw")
    except OSError:
        return False
