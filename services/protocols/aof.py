"""The db's append-only log: every write, as the RESP command that made it, on disk.

Framing is pure (``record``, ``replay``, sans-IO); ``services.servers.db_log`` is
the thin file code around it. Policies, as in Redis' ``appendfsync``:

  always    write() and fsync() before the reply: an acknowledged write is on disk
  everysec  write() before the reply, fsync() once a second: a process crash loses
            nothing (the kernel has the bytes), a machine crash up to a second
  no        write() before the reply; the kernel flushes when it likes

On start the log is replayed. A torn last record (the process died mid-write)
is detected as an incomplete frame, dropped, and cut off the file; anything
unparseable is treated the same way, so garbage is never replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .resp import ProtocolError, encode_command, parse_reply

POLICIES = ("always", "everysec", "no")
CHUNK = 1 << 20  # replay reads the log a MiB at a time


def record(command: list[bytes], now: float) -> bytes:
    """The bytes to log for one write. A relative expiry (EX/PX) becomes an absolute
    one (PXAT, wall-clock ms) so that replaying later does not extend it."""
    args = list(command)
    if args and args[0].upper() == b"SET":
        for i in range(3, len(args) - 1):
            option = args[i].upper()
            if option in (b"EX", b"PX"):
                amount = int(args[i + 1])
                ms = amount * 1000 if option == b"EX" else amount
                args[i], args[i + 1] = b"PXAT", str(int(now * 1000) + ms).encode()
                break
    return encode_command(*args)


@dataclass(frozen=True)
class Replay:
    commands: list[list[bytes]]
    valid_bytes: int  # the length of the intact prefix
    dropped_bytes: int  # a torn or unreadable tail


def replay(data: bytes) -> Replay:
    """The whole log at once (for tests and small logs); see ``replay_stream``."""
    commands: list[list[bytes]] = []
    _, valid, dropped = replay_stream([data], commands.append)
    return Replay(commands, valid, dropped)


def replay_stream(
    chunks: Iterable[bytes], apply: Callable[[list[bytes]], object]
) -> tuple[int, int, int]:
    """Hand each whole record to ``apply`` as soon as it is read: (records, valid bytes,
    dropped bytes). Only an unfinished record is ever held, so replaying a log far
    larger than memory allows (a flood of overwrites of one key) costs no more than
    the data it leaves behind. Stops at the first unparseable byte: the rest is dropped."""
    buffer = b""
    count = valid = total = 0
    broken = False
    for chunk in chunks:
        total += len(chunk)
        if broken:
            continue
        buffer += chunk
        pos = 0
        while pos < len(buffer):
            try:
                parsed = parse_reply(buffer, pos)
            except (ProtocolError, ValueError):
                broken = True
                break
            if parsed is None:
                break  # unfinished: the next chunk may complete it
            frame, end = parsed
            if not isinstance(frame, list) or not all(isinstance(a, bytes) for a in frame):
                broken = True
                break
            apply([a for a in frame if isinstance(a, bytes)])
            count += 1
            pos = end
        valid += pos
        buffer = buffer[pos:]
    return count, valid, total - valid
