"""Write numbered keys to db as fast as one connection allows, through crashes.

``python3 -m services.probes.writer HOST PORT PREFIX SECONDS`` sends ``SET PREFIX:i i``
for i = 0, 1, 2, ... one at a time, waiting for each reply. When the server
dies it reconnects (every 50 ms) and goes on with the next number. It prints,
as JSON, which numbers were acknowledged (+OK), as ranges, and how often the
connection broke, and when each acknowledgement arrived (CLOCK_MONOTONIC, which
every container shares: the driver can tell which of them came before a fault).
A write whose reply never came is not counted: only an acknowledgement is a promise.
"""

from __future__ import annotations

import json
import socket
import sys
import time

from ..protocols.resp import Simple, encode_command, parse_reply

RETRY = 0.05


def ranges(numbers: list[int]) -> list[list[int]]:
    """[0, 1, 2, 5, 6] -> [[0, 2], [5, 6]] (inclusive)."""
    out: list[list[int]] = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


def write(host: str, port: int, prefix: str, seconds: float) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    acked: list[int] = []
    acked_at: list[float] = []
    broken = 0
    i = 0
    sock: socket.socket | None = None
    while time.monotonic() < deadline:
        if sock is None:
            try:
                sock = socket.create_connection((host, port), timeout=1.0)
            except OSError:
                time.sleep(RETRY)
                continue
        try:
            sock.sendall(encode_command("SET", f"{prefix}:{i}", str(i)))
            buf = b""
            while (parsed := parse_reply(buf)) is None:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed")
                buf += chunk
            if parsed[0] == Simple("OK"):
                acked.append(i)
                acked_at.append(round(time.monotonic(), 4))
        except OSError:
            broken += 1
            sock.close()
            sock = None
        i += 1  # a write that got no reply is never retried: it may or may not have landed
    if sock is not None:
        sock.close()
    return {
        "attempted": i,
        "acked": ranges(acked),
        "acked_count": len(acked),
        "acked_at": [[n, at] for n, at in zip(acked, acked_at, strict=True)],
        "broken": broken,
    }


def main() -> int:
    if len(sys.argv) != 5:
        print("usage: python3 -m services.probes.writer HOST PORT PREFIX SECONDS", file=sys.stderr)
        return 2
    host, port, prefix, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    json.dump(write(host, port, prefix, seconds), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
