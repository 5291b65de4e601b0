"""Tracing system calls: a lab process's, from a helper, and a socket script's, in its host.

A lab process is traced from a helper container that joins its host's PID and
network namespaces and holds one capability, CAP_SYS_PTRACE: ``strace -p``
attaches to the running process (uid 10001, no capabilities, no new
privileges) and detaches when the helper is stopped. The helper is removed
when the block ends, however it ends (Ctrl-C included); `lab down` removes it
too, by its label.

A socket script runs under strace in its own host: a process may trace its own
child with no capability at all, so nothing is added to the hosts.

Both put their calls on the lab's one clock: strace prints wall-clock times,
and the offset between the wall clock and CLOCK_MONOTONIC turns them into the
same ``t`` as the socket events, counted from a CLOCK_MONOTONIC ``t0``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lab import journal
from lab.backends.engine import Engine
from lab.engine import helpers
from lab.errors import HelperFailed, TraceError, UsageError
from lab.interrupts import ctrl_c_ignored
from lab.progress import Progress, silent
from lab.services.probes.sockscript import Event, Step
from lab.syscalls.strace import Syscall, clock_offset, command, on_sockets, parse

PURPOSE = "trace"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5  # seconds strace gets to detach after SIGTERM
POLL = 0.5
NO_STRACE = 127  # services.helpers.trace's exit status when the image lacks strace


@dataclass
class Trace:
    """What one trace saw: the process's system calls and, from the journal, the socket
    events (and traced system calls) of every lab command that ran meanwhile."""

    process: str
    host: str
    pid: int
    t0: float  # CLOCK_MONOTONIC: every ``t`` here counts from it
    calls: list[Syscall] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    others: list[Syscall] = field(default_factory=list)  # traced clients' system calls
    ended: str = ""  # why it ended before it was stopped ("exited with 0", "killed by...")
    helper: helpers.Helper | None = field(default=None, repr=False, compare=False)

    def wait(self, seconds: float) -> None:
        """Let the trace run for ``seconds``, or until strace ends (with the process)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
            if self.helper is not None and self.helper.ended():
                return

    def to_json(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "host": self.host,
            "pid": self.pid,
            "t0": self.t0,
            "calls": [asdict(c) for c in self.calls],
            "events": [asdict(e) for e in self.events],
            "others": [asdict(c) for c in self.others],
            "ended": self.ended,
        }


def unknown_process(backend: Engine, name: str) -> UsageError:
    known = ", ".join(backend.topology.processes)
    return UsageError(f"no process named {name!r} to trace", f"one of: {known}")


@contextmanager
def tracing(
    backend: Engine, process: str, t0: float | None = None, progress: Progress = silent
) -> Iterator[Trace]:
    """Trace ``process`` while the block runs; its calls are in the Trace after the block."""
    if process not in backend.topology.processes:
        raise unknown_process(backend, process)
    host = backend.topology.processes[process].host
    with tracing_pid(backend, host, backend.pid_of(process), process, t0, progress) as trace:
        yield trace


@contextmanager
def tracing_pid(
    backend: Engine,
    host: str,
    pid: int,
    process: str,
    t0: float | None = None,
    progress: Progress = silent,
) -> Iterator[Trace]:
    """Trace the process ``pid`` of ``host``'s PID namespace (named ``process`` in what it
    records): a lab process, or one the lab started there (a server under check)."""
    trace = Trace(process, host, pid, time.monotonic() if t0 is None else t0)
    tail = journal.Tail(journal.path_for(backend.topology.project))
    helper: helpers.Helper | None = None
    try:
        progress(f"attaching strace to {process} (pid {pid} on {host})")
        helper = helpers.start(
            backend,
            PURPOSE,
            helpers.Namespace.of_host(backend, host),
            ["python3", "-m", "services.helpers.trace", "--", *command(pid=pid)],
            "SYS_PTRACE",
            pids=True,
        )
        _wait_attached(helper, process)
        trace.helper = helper
        yield trace
        helper.stop(STOP_TIMEOUT)  # SIGTERM: strace detaches, the process runs on as it was
        logs = helper.output()
        offset = clock_offset(logs)
        if offset is None:
            raise TraceError(f"the trace of {process} printed no clock offset")
        calls = parse(logs, origin=trace.t0 + offset, process=process, pid=pid)
        trace.calls = on_sockets(calls)
        trace.ended = next((c.args for c in calls if c.kind == "exit" and c.pid == pid), "")
        trace.events, trace.others = _journal(tail.read(), trace.t0)
        trace.helper = None
    finally:
        with ctrl_c_ignored():
            if helper is not None:
                helper.remove()


def _wait_attached(helper: helpers.Helper, process: str) -> None:
    try:
        helpers.wait_ready(helper, "attached", READY_TIMEOUT)
    except HelperFailed as exc:
        if helper.exit_code() == NO_STRACE:
            raise TraceError(
                "the lab's image has no strace (it was built before strace was added)",
                "`lab down` then `lab up` builds it again on the current base image",
            ) from None
        lines = exc.output.strip().splitlines()
        raise TraceError(
            f"strace could not attach to {process}: {lines[-1] if lines else 'no output'}"
        ) from None


def _journal(items: Iterator[dict[str, Any]], t0: float) -> tuple[list[Event], list[Syscall]]:
    """Socket events and traced system calls other lab commands published, on t0's clock."""
    events: list[Event] = []
    calls: list[Syscall] = []
    for item in items:
        origin = item.get("t0")
        if origin is None:
            continue  # times that count from nothing known cannot be placed
        shift = float(origin) - t0
        if item.get("kind") == "socket":
            events += [replace(Event(**e), t=round(e["t"] + shift, 6)) for e in item["events"]]
        elif item.get("kind") == "syscalls":
            calls += [replace(Syscall(**c), t=round(c["t"] + shift, 6)) for c in item["calls"]]
    return events, calls


# --- socket scripts under strace ------------------------------------------------------


def offset_now() -> float:
    """Wall clock minus CLOCK_MONOTONIC. The hosts share this machine's kernel and so its
    clocks: read here, it holds for a strace inside any of them."""
    return time.time() - time.monotonic()


def run_traced(
    backend: Engine, host: str, steps: list[Step], t0: float
) -> tuple[list[Event], list[Syscall]]:
    """Run a socket script in ``host`` under strace: its events and its system calls."""
    offset = offset_now()
    events, err = backend.run_script_with_stderr(host, steps, t0, wrap=command())
    return events, script_calls(err, t0 + offset, host)


def script_calls(strace_text: str, origin: float, host: str) -> list[Syscall]:
    """A traced script's calls on sockets, from strace's output (the interpreter's own
    start-up, before its first socket, is not the script's doing)."""
    calls = on_sockets(parse(strace_text, origin=origin, process=host))
    first = next((i for i, c in enumerate(calls) if c.name in ("socket", "socketpair")), None)
    return calls[first:] if first is not None else []
