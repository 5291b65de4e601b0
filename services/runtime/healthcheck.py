"""Container healthchecks: ``python3 -m services.runtime.healthcheck KIND PORT``.

Each check of the lab's own servers is a real request over loopback inside the
host, so "healthy" means the process answers its protocol, not merely that it
is running. KIND is one of: http, db, tcp-shout, udp-shout; or ``listening`` with
PORT/tcp or PORT/udp, for a server of your own in any language: healthy once its
host's kernel holds a listening (TCP) or bound (UDP) socket on that port, read
from /proc/net like ``ss -ltun``. (A host's healthcheck is `true`: it is ready as
soon as its init runs.)
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

TIMEOUT = 2.0


# Each check takes the address too: the driver runs the same checks from outside the
# host, over the lab network, when it can reach it (lab/engine/readiness.py).


def check_http(port: int, address: str = "127.0.0.1", timeout: float = TIMEOUT) -> bool:
    with socket.create_connection((address, port), timeout=timeout) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: healthcheck\r\nConnection: close\r\n\r\n")
        return _read_all(s).startswith(b"HTTP/1.1 200 ")


def check_db(port: int, address: str = "127.0.0.1", timeout: float = TIMEOUT) -> bool:
    with socket.create_connection((address, port), timeout=timeout) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64) == b"+PONG\r\n"


def check_tcp_shout(port: int, address: str = "127.0.0.1", timeout: float = TIMEOUT) -> bool:
    with socket.create_connection((address, port), timeout=timeout) as s:
        s.sendall(b"ping")
        s.shutdown(socket.SHUT_WR)
        return _read_all(s) == b"PING"


def check_udp_shout(port: int, address: str = "127.0.0.1", timeout: float = TIMEOUT) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((address, port))
        s.send(b"ping")
        return s.recv(64) == b"PING"


def _read_all(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def listening(port: int, transport: str = "tcp", proc: str = "/proc") -> bool:
    """Whether this network namespace has a listening TCP (or bound UDP) socket on ``port``."""
    from ..probes.porttable import read_sockets

    return any(s.port == port and s.protocol.rstrip("6") == transport for s in read_sockets(proc))


CHECKS: dict[str, Callable[..., bool]] = {
    "http": check_http,
    "db": check_db,
    "tcp-shout": check_tcp_shout,
    "udp-shout": check_udp_shout,
}


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "listening":
        number, _, transport = argv[1].partition("/")
        if number.isdigit() and transport in ("", "tcp", "udp"):
            healthy = listening(int(number), transport or "tcp")
            if not healthy:
                print(f"nothing listens on {argv[1]}", file=sys.stderr)
            return 0 if healthy else 1
    if len(argv) != 2 or argv[0] not in CHECKS or not argv[1].isdigit():
        print(
            f"usage: healthcheck {{{','.join(CHECKS)}}} PORT | listening PORT[/tcp|/udp]",
            file=sys.stderr,
        )
        return 2
    try:
        healthy = CHECKS[argv[0]](int(argv[1]))
    except OSError as exc:
        print(f"{argv[0]} unhealthy: {exc}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"{argv[0]} unhealthy: unexpected answer", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
