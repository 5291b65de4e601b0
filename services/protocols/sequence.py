"""Numbered messages at a steady pace, and when each came back (standard library only).

    python3 -m services.protocols.sequence tcp|udp HOST PORT COUNT INTERVAL_MS DRAIN_S [T0]

Sends ``msg 00000`` .. ``msg COUNT-1``, one every INTERVAL_MS, to a shout server
over one TCP connection or one UDP socket, and reads the uppercased answers
meanwhile and for up to DRAIN_S seconds after the last send. Prints one JSON
object: when each message was sent and when each answer arrived (seconds since
T0, a CLOCK_MONOTONIC reading; the containers share that clock), in arrival
order, and any error. Framing is sans-IO (``encode``, ``Lines``); the loop
around it is a plain selector.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time
from typing import Any

WIDTH = 5  # digits: up to 99,999 messages


def encode(number: int) -> bytes:
    return f"msg {number:0{WIDTH}d}\n".encode()


def number_of(line: bytes) -> int | None:
    """The number in a message or its answer (``MSG 00042``), or None for anything else."""
    parts = line.strip().split()
    if len(parts) == 2 and parts[0].lower() == b"msg" and parts[1].isdigit():
        return int(parts[1])
    return None


class Lines:
    """A TCP byte stream cut back into lines: TCP keeps no message boundaries."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        return complete


def run(
    protocol: str, host: str, port: int, count: int, interval: float, drain: float, t0: float
) -> dict[str, Any]:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    sent: list[tuple[int, float]] = []
    received: list[tuple[int, float]] = []
    error = ""
    try:
        sock.settimeout(10.0)
        if protocol == "tcp":
            # One message, one segment: without this, Nagle's algorithm bunches the
            # messages queued behind a lost segment, and losses hide in fewer frames.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect((host, port))
        sock.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ)
        lines = Lines()
        pending = b""
        start = time.monotonic()
        last_send = start + interval * (count - 1)
        deadline = last_send + drain
        while len(received) < count and time.monotonic() < deadline:
            now = time.monotonic()
            due = len(sent) < count and now >= start + interval * len(sent)
            if due:
                number = len(sent)
                sent.append((number, now - t0))
                pending += encode(number)
            if pending:
                try:
                    if protocol == "tcp":
                        pending = pending[sock.send(pending) :]
                    else:
                        sock.send(pending)
                        pending = b""
                except BlockingIOError:
                    pass
            wake = start + interval * len(sent) if len(sent) < count else deadline
            for _ in selector.select(max(0.0, min(wake, deadline) - time.monotonic())):
                data = sock.recv(65536)
                if protocol == "tcp" and not data:
                    raise ConnectionAbortedError("the server closed the connection")
                arrived = time.monotonic() - t0
                for line in lines.feed(data) if protocol == "tcp" else [data]:
                    answered = number_of(line)
                    if answered is not None:
                        received.append((answered, arrived))
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    return {"protocol": protocol, "sent": sent, "received": received, "error": error}


def main(argv: list[str]) -> int:
    if len(argv) not in (6, 7) or argv[0] not in ("tcp", "udp"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    protocol, host, port, count, interval_ms, drain = argv[:6]
    t0 = float(argv[6]) if len(argv) == 7 else time.monotonic()
    report = run(protocol, host, int(port), int(count), float(interval_ms) / 1000, float(drain), t0)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
