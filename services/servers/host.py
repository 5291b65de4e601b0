"""The init process of a lab *host*: it holds the host's network and PID namespaces.

A host is a container that owns an IP address and runs nothing but this. The
service processes (http, db, tcp-shout, udp-shout) are containers that join a
host's namespaces, so several processes share one IP, as on a real machine.
Killing a process leaves this one (and the IP) alive; killing this one takes
the IP away, and the kernel ends every process in the host's PID namespace.
"""

from __future__ import annotations

import os
import signal
import socket
import sys


def reap(signum: int, frame: object) -> None:
    # Orphans in the PID namespace are re-parented to us: collect their status.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"host {socket.gethostname()} up (pid {os.getpid()})", flush=True)
    while not stopping:
        signal.pause()  # returns after any handled signal
    print(f"host {socket.gethostname()} shutting down", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
