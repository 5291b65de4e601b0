"""Start strace with the clock offset that puts its times on the lab's common clock.

    python3 -m services.helpers.trace -- strace ARG...

Runs in a helper container that joined a host's PID and network namespaces and
holds only CAP_SYS_PTRACE. strace's ``-ttt`` prints wall-clock times; the lab
times everything by CLOCK_MONOTONIC (one clock for every container, as they
share the kernel). So this prints ``clock offset SECONDS`` (wall clock minus
monotonic, read here, a moment before strace starts) and then becomes strace.
SIGTERM ends strace, which detaches from the traced process and leaves it running.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

NO_STRACE = 127


def main(argv: list[str]) -> int:
    if argv[:1] != ["--"] or len(argv) < 2:
        print("usage: python3 -m services.helpers.trace -- strace ARG...", file=sys.stderr)
        return 2
    program = argv[1:]
    if shutil.which(program[0]) is None:
        # A lab built on a base image from before strace was added to it.
        print(f"no {program[0]} in this image", file=sys.stderr)
        return NO_STRACE
    print(f"clock offset {time.time() - time.monotonic():.6f}", flush=True)
    os.execvp(program[0], program)  # strace takes this process over from here
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
