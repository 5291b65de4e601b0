"""What the lab did, as it did it: one line of JSON per happening, for whoever watches.

Every driver process (a `lab` command, a lab script, a notebook, `lab web` itself)
appends here what it sends and what the kernel answered (socket events), the
faults it sets and undoes, the links it impairs, the experiments it runs. `lab
web` tails the file and shows each happening on the topology as it comes, so a
`lab send` in a terminal is seen in the browser. Appends of one line each are
atomic (O_APPEND), so several writers never interleave; the file is cut when it
grows past MAX_BYTES (a reader that finds it shorter starts again from the top).
Writing never fails a command: a journal that cannot be written is skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lab.names import PROJECT
from lab.services.probes.sockscript import Event

MAX_BYTES = 8 * 1024 * 1024
DIR_ENV = "LAB_JOURNAL_DIR"


def path_for(project: str) -> Path:
    folder = Path(
        os.environ.get(DIR_ENV) or Path(tempfile.gettempdir()) / f"{PROJECT}-{os.getuid()}"
    )
    return folder / f"{project}.jsonl"


def publish(project: str, kind: str, **data: Any) -> None:
    """Append one happening: ``kind`` (socket, fault, link, experiment...) and its data."""
    line = json.dumps({"kind": kind, "at": time.monotonic(), "pid": os.getpid(), **data})
    path = path_for(project)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists() and path.stat().st_size > MAX_BYTES:
            path.write_text("")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)
    except OSError:
        return


def socket_events(project: str, events: Iterable[Event], t0: float | None = None) -> None:
    """Socket events as they were recorded; ``t0``: the CLOCK_MONOTONIC time their ``t``
    counts from (so a watcher can put them on its own clock)."""
    listed = [asdict(e) for e in events]
    if listed:
        publish(project, "socket", t0=t0, events=listed)


def syscalls(project: str, calls: Iterable[Any], t0: float) -> None:
    """System calls a traced socket script made (lab.syscalls.strace.Syscall), on ``t0``'s
    clock as socket events are: `lab trace` shows them beside the process it traces."""
    listed = [asdict(c) for c in calls]
    if listed:
        publish(project, "syscalls", t0=t0, calls=listed)


class Tail:
    """Reads the lines appended since the last read (from the end, at first)."""

    def __init__(self, path: Path, from_start: bool = False) -> None:
        self.path = path
        self.offset = 0 if from_start or not path.exists() else path.stat().st_size
        self._partial = b""

    def read(self) -> Iterator[dict[str, Any]]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size < self.offset:  # cut: start over
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        self.offset = size
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            try:
                yield json.loads(line)
            except ValueError:
                continue
