"""Load generators that run inside the client host (standard library only).

python3 -m services.probes.loadgen c10k HOST PORT CONNECTIONS ACTIVE ROUNDS
    Opens CONNECTIONS TCP connections to a shout server and has each send one
    message and read its answer (all must be served); prints {"held": ...} and
    keeps them all open until its standard input closes, so the driver can
    weigh the server meanwhile; then ACTIVE of them do ROUNDS round trips each
    while the rest stay idle, and the latencies are printed as JSON.

python3 -m services.probes.loadgen udp HOST PORT RATE SECONDS SIZE
    Sends datagrams of SIZE bytes at RATE a second for SECONDS, counts the
    answers, and prints as JSON what was sent and answered, at which rate each
    really went (not the rate asked for), and how many answers its own socket
    dropped for want of room (so that a loss is not blamed on the server).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import sys
import time


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` fall (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


async def _open(
    host: str, port: int, i: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
        message = f"c{i}".encode()
        writer.write(message)
        await writer.drain()
        reply = await reader.readexactly(len(message))
        return (reader, writer) if reply == message.upper() else None
    except (OSError, asyncio.IncompleteReadError):
        return None


async def c10k(host: str, port: int, connections: int, active: int, rounds: int) -> None:
    started = time.perf_counter()
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    batch = 500  # connect in waves: a SYN flood of 10,000 at once overflows the backlog
    for first in range(0, connections, batch):
        results = await asyncio.gather(
            *(_open(host, port, i) for i in range(first, min(first + batch, connections)))
        )
        opened.extend(r for r in results if r is not None)
    connect_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "held": len(opened),
                "asked": connections,
                "connect_seconds": round(connect_seconds, 3),
            }
        ),
        flush=True,
    )
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # driver weighs server

    latencies: list[float] = []

    async def rally(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for r in range(rounds):
            message = f"round {r}".encode()
            t0 = time.perf_counter()
            writer.write(message)
            await writer.drain()
            await reader.readexactly(len(message))
            latencies.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(rally(*pair) for pair in opened[:active]))
    for _, writer in opened:
        writer.close()
    print(
        json.dumps(
            {
                "active": min(active, len(opened)),
                "round_trips": len(latencies),
                "p50_ms": round(percentile(latencies, 0.50), 3),
                "p99_ms": round(percentile(latencies, 0.99), 3),
            }
        ),
        flush=True,
    )


def udp(host: str, port: int, rate: int, seconds: float, size: int) -> None:
    address = (socket.gethostbyname(host), port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setblocking(False)
    payload = b"u" * size
    total = int(rate * seconds)
    sent = received = received_bytes = 0

    def drain() -> None:
        nonlocal received, received_bytes
        while True:
            try:
                received_bytes += len(sock.recv(65535))
            except BlockingIOError:
                return
            received += 1

    start = time.perf_counter()
    while sent < total:
        drain()
        wait = start + sent / rate - time.perf_counter()  # keep to the offered rate
        if wait > 0:
            time.sleep(min(wait, 0.001))
            continue
        try:
            sock.sendto(payload, address)
            sent += 1
        except BlockingIOError:
            pass  # our own send buffer is full: try again at once
    elapsed = time.perf_counter() - start
    received_while_sending = received
    deadline = time.perf_counter() + 1.0  # answers still on their way
    while time.perf_counter() < deadline:
        drain()
        time.sleep(0.005)
    own_drops = socket_drops(sock.getsockname()[1])
    print(
        json.dumps(
            {
                "rate": rate,
                "sent": sent,
                "received": received,
                "received_bytes": received_bytes,  # an echo that merges datagrams shows here
                "seconds": round(elapsed, 3),
                "sent_rate": round(sent / max(elapsed, 1e-9)),
                "received_rate": round(received_while_sending / max(elapsed, 1e-9)),
                "client_drops": own_drops,
            }
        ),
        flush=True,
    )


def socket_drops(port: int, proc: str = "/proc") -> int:
    """The drop counter of the UDP socket bound to ``port`` (last column of /proc/net/udp)."""
    with open(f"{proc}/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port:
                return int(fields[-1])
    return 0


def main() -> int:
    args = sys.argv[1:]
    if len(args) == 6 and args[0] == "c10k":
        asyncio.run(c10k(args[1], int(args[2]), int(args[3]), int(args[4]), int(args[5])))
        return 0
    if len(args) == 6 and args[0] == "udp":
        udp(args[1], int(args[2]), int(args[3]), float(args[4]), int(args[5]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
