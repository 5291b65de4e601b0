"""db's append-only log on disk: the file code around the framing of
``services.protocols.aof`` (write, flush, fsync by policy, replay, cut a torn tail).

``DB_UNSAFE_ACK_BEFORE_FSYNC=1`` makes ``always`` wrong on purpose: writes are
handed to the kernel before the reply, as they must be, but fsynced only on the
next tick, after the reply has left. Nothing should run with it; it exists so
that a test can show db-kill's power-loss claim failing when the promise is broken.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..protocols.aof import CHUNK, POLICIES, replay_stream


class AppendOnlyLog:
    def __init__(self, path: str, policy: str = "always", *, unsafe: bool = False) -> None:
        if policy not in POLICIES:
            raise ValueError(f"appendfsync must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.path = path
        self.policy = policy
        self.unsafe = unsafe  # ack before fsync under always: deliberately wrong (see above)
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
        if self.policy == "always" and not self.unsafe:
            os.fsync(self._file.fileno())
            self._last_sync = time.monotonic()
        self._dirty = self.policy != "always" or self.unsafe

    def tick(self) -> None:
        """Called about once a second: the everysec policy's fsync."""
        if (self.policy == "everysec" or self.unsafe) and self._dirty:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._dirty = False
            self._last_sync = time.monotonic()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
