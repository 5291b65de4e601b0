"""The db's append-only log: every write, as the RESP command that made it, on disk.

Framing is pure (``record``, ``replay``); ``AppendOnlyLog`` is the thin file
code around it. Policies, as in Redis' ``appendfsync``:

  always    write() and fsync() before the reply: an acknowledged write is on disk
  everysec  write() before the reply, fsync() once a second: a process crash loses
            nothing (the kernel has the bytes), a machine crash up to a second
  no        write() before the reply; the kernel flushes when it likes

On start the log is replayed. A torn last record (the process died mid-write)
is detected as an incomplete frame, dropped, and cut off the file; anything
unparseable is treated the same way, so garbage is never replayed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.protocols.resp import ProtocolError, encode_command, parse_reply

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


class AppendOnlyLog:
    def __init__(self, path: str, policy: str = "always") -> None:
        if policy not in POLICIES:
            raise ValueError(f"appendfsync must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.path = path
        self.policy = policy
        self._file = open(path, "ab")  # noqa: SIM115 - lives as long as the server
        self._dirty = False
        self._last_sync = time.monotonic()

    @staticmethod
    def read(path: str, apply: Callable[[list[bytes]], object]) -> tuple[int, int]:
        """Replay the log at ``path`` into ``apply``, a chunk at a time, and cut a torn
        tail off the file: (records replayed, bytes dropped)."""
        try:
            with open(path, "rb") as f:
                count, valid, dropped = replay_stream(iter(lambda: f.read(CHUNK), b""), apply)
        except FileNotFoundError:
            return 0, 0
        if dropped:
            with open(path, "r+b") as f:
                f.truncate(valid)
                os.fsync(f.fileno())
        return count, dropped

    def append(self, frame: bytes) -> None:
        self._file.write(frame)
        self._dirty = True

    def commit(self) -> None:
        """Called once per batch of writes, before their replies go out."""
        if not self._dirty:
            return
        self._file.flush()  # write(): the kernel has the bytes now
        if self.policy == "always":
            os.fsync(self._file.fileno())
            self._last_sync = time.monotonic()
        self._dirty = self.policy != "always"

    def tick(self) -> None:
        """Called about once a second: the everysec policy's fsync."""
        if self.policy == "everysec" and self._dirty:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._dirty = False
            self._last_sync = time.monotonic()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
