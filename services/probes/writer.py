"""Write numbered keys to db as fast as one connection allows, through crashes.

``python3 -m services.probes.writer HOST PORT PREFIX SECONDS [--until-input-ends]`` sends
``SET PREFIX:i i`` for i = 0, 1, 2, ... one at a time, waiting for each reply. When the
server dies it reconnects (every 50 ms) and goes on with the next number. It prints, as
JSON, which numbers were acknowledged (+OK), as ranges, and when each acknowledgement
arrived and each connection broke (CLOCK_MONOTONIC: the driver compares them with its
own kill times, after checking that it runs on the same kernel, lab/experiments/clocks.py).
A write whose reply never came is not counted: only an acknowledgement is a promise.

``--until-input-ends``: print ``writing`` once the first write is acknowledged, then
go on until standard input ends (SECONDS is then only a limit). The driver kills db
only once the writer is writing, and ends it only after the last restart, however
long the restarts took: every kill lands on a live connection.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
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


def write(
    host: str, port: int, prefix: str, seconds: float, stop: threading.Event | None = None
) -> dict[str, object]:
    """Write until ``seconds`` pass or ``stop`` is set; a ``stop`` also means: say
    ``writing`` on standard output at the first acknowledgement."""
    deadline = time.monotonic() + seconds
    acked: list[int] = []
    acked_at: list[float] = []
    broken_at: list[float] = []
    i = 0
    sock: socket.socket | None = None
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
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
                if stop is not None and len(acked) == 1:
                    print("writing", flush=True)
        except OSError:
            broken_at.append(round(time.monotonic(), 4))
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
        "broken": len(broken_at),
        "broken_at": broken_at,
    }


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--until-input-ends"]
    if len(args) != 4:
        print(
            "usage: python3 -m services.probes.writer HOST PORT PREFIX SECONDS "
            "[--until-input-ends]",
            file=sys.stderr,
        )
        return 2
    host, port, prefix, seconds = args[0], int(args[1]), args[2], float(args[3])
    ended = threading.Event()

    def watch() -> None:
        # The raw descriptor, not sys.stdin: a daemon thread blocked inside the buffered
        # reader holds its lock, and the interpreter aborts on it at exit (SIGABRT).
        while os.read(0, 4096):
            pass
        ended.set()

    until_input_ends = "--until-input-ends" in sys.argv
    if until_input_ends:
        threading.Thread(target=watch, daemon=True).start()
    json.dump(write(host, port, prefix, seconds, ended if until_input_ends else None), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
