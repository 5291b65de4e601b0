"""Numbered messages at a steady pace, and when each came back (standard library only).

    python3 -m services.probes.numbered tcp|udp HOST PORT COUNT INTERVAL_MS DRAIN_S [T0]

Sends ``msg 00000`` .. ``msg COUNT-1``, one every INTERVAL_MS, to a shout server
over one TCP connection or one UDP socket, and reads the uppercased answers
meanwhile. UDP waits DRAIN_S seconds after the last send for late answers: a
datagram is never sent again, so nothing comes later. TCP waits for what its
kernel says: until every answer is in, or else until nothing it sent is left
unacknowledged (SIOCOUTQ is 0) and DRAIN_S more have passed, bounded by
TCP_LIMIT_S: a segment lost several times in a row is resent on a timer that
doubles each time, and the experiment must not stop watching while TCP is still
at work. Prints one JSON object: when each message was sent and when each answer
arrived (seconds since T0, a CLOCK_MONOTONIC reading; the containers share that
clock), any error, and what the sender's kernel counted meanwhile (its
retransmission timeouts and tail loss probes, from /proc/net/netstat).
"""

from __future__ import annotations

import fcntl
import json
import selectors
import socket
import struct
import sys
import termios
import time
from typing import Any

from ..protocols.sequence import Lines, encode, number_of

TCP_LIMIT_S = 60.0  # the most a TCP run waits after its last send
# TcpExt counters of the network namespace: retransmission timeouts, tail loss probes
# (a probe of the last segment sent when its ACK is late), and the receiver's reports
# that a segment came twice (D-SACK): what the kernel itself says it resent, and why.
COUNTERS = ("TCPTimeouts", "TCPLossProbes", "TCPLossProbeRecovery", "TCPDSACKRecv")


def netstat(text: str) -> dict[str, int]:
    """The TcpExt counters in a /proc/net/netstat text."""
    lines = [line.split() for line in text.splitlines() if line.startswith("TcpExt:")]
    if len(lines) < 2:
        return {}
    names, values = lines[0][1:], lines[1][1:]
    return {n: int(v) for n, v in zip(names, values, strict=False) if n in COUNTERS}


def read_netstat() -> dict[str, int]:
    try:
        with open("/proc/net/netstat") as f:
            return netstat(f.read())
    except OSError:
        return {}


def unacknowledged(sock: socket.socket) -> int:
    """Bytes sent but not yet acknowledged by the peer (SIOCOUTQ, as `ss` shows Send-Q)."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0])


def run(
    protocol: str, host: str, port: int, count: int, interval: float, drain: float, t0: float
) -> dict[str, Any]:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    sent: list[tuple[int, float]] = []
    received: list[tuple[int, float]] = []
    error = ""
    before = read_netstat()
    waited = 0.0
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
        limit = last_send + (TCP_LIMIT_S if protocol == "tcp" else drain)
        settled_at: float | None = None  # TCP: when the kernel had nothing left to resend
        while len(received) < count:
            now = time.monotonic()
            if now >= limit:
                if protocol == "tcp":
                    error = (
                        f"{count - len(received)} answers still missing {TCP_LIMIT_S:g} s after "
                        f"the last send; {unacknowledged(sock)} bytes still unacknowledged"
                    )
                break
            if protocol == "tcp" and len(sent) == count and not pending:
                if unacknowledged(sock) == 0:
                    settled_at = settled_at or now
                    if now >= settled_at + drain:
                        break  # everything sent was acknowledged long ago: no more is coming
                else:
                    settled_at = None
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
            wake = start + interval * len(sent) if len(sent) < count else limit
            if protocol == "tcp" and len(sent) == count:
                wake = min(wake, now + 0.05)  # look at the send queue again soon
            for _ in selector.select(max(0.0, min(wake, limit) - time.monotonic())):
                data = sock.recv(65536)
                if protocol == "tcp" and not data:
                    raise ConnectionAbortedError("the server closed the connection")
                arrived = time.monotonic() - t0
                for line in lines.feed(data) if protocol == "tcp" else [data]:
                    answered = number_of(line)
                    if answered is not None:
                        received.append((answered, arrived))
        waited = time.monotonic() - last_send
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    after = read_netstat()
    return {
        "protocol": protocol,
        "sent": sent,
        "received": received,
        "error": error,
        "waited_after_last_send_s": round(waited, 3),
        "kernel": {name: after.get(name, 0) - before.get(name, 0) for name in COUNTERS},
    }


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
