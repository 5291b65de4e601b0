"""Run a function with its sockets in another network namespace (a thread's own setns).

`lab fuzz` opens its sockets here, on the Docker host, to the ports the lab publishes on
127.0.0.1. On the test cluster those ports are published by each machine's engine, on the
machine container's own loopback: the fuzzer then runs in a thread that joined that
machine's network namespace. setns(2) moves only the calling thread, so the driver's
other threads, and every path-named socket (the Docker Engines' own), are untouched.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from lab.errors import LabError

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def run_in(pid: int, work: Callable[[], T]) -> T:
    """``work()`` in a thread of its own inside the network namespace of ``pid``."""
    done: list[T] = []
    failed: list[BaseException] = []

    def thread() -> None:
        try:
            try:
                fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            except OSError as exc:
                raise LabError(
                    f"no network namespace of process {pid} to enter: {exc.strerror}",
                    "is the machine still running? (`lab cluster status`)",
                ) from None
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise LabError(
                        f"cannot enter the network namespace of process {pid}: {os.strerror(err)}",
                        "run the driver as root on the machine that holds the test cluster",
                    )
            finally:
                os.close(fd)
            done.append(work())
        except BaseException as exc:  # handed to the caller's thread, raised there
            failed.append(exc)

    worker = threading.Thread(target=thread, name=f"netns-{pid}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)  # short joins: Ctrl-C still reaches the main thread
    if failed:
        raise failed[0]
    return done[0]
