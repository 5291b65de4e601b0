"""Numbered messages: their framing, sans-IO (the sender is services/probes/numbered.py).

``msg 00042\n`` goes out; ``MSG 00042`` comes back from a shout server. Over TCP
the answers arrive as a byte stream, cut back into lines by ``Lines``.
"""

from __future__ import annotations

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
