"""Running a row: one socket session per client, all in step (before, during, after the
fault), side by side in threads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace

from lab.experiments.builtin.failures.model import AFTER_TIMEOUT, PROBE_TIMEOUT, Cell
from lab.experiments.builtin.failures.steps import (
    FRESH,
    Client,
    connect_steps,
    recv_step,
    send_step,
)
from lab.experiments.model import (
    Context,
)
from lab.interrupts import ctrl_c_ignored
from lab.services.probes.sockscript import Event

Step = Callable[..., list[Event]]


@contextmanager
def sessions(
    ctx: Context, host: str, t0: float, count: int, pool: ThreadPoolExecutor
) -> Iterator[list[Step]]:
    """``count`` sessions on ``host``, opened side by side, all closed however the block
    ends (one that failed to open closes the others)."""
    futures = [pool.submit(lambda: ctx.session(host, t0).__enter__()) for _ in range(count)]
    try:
        wait(futures)
    finally:
        with ctrl_c_ignored():  # a Ctrl-C above still lets each opening end, to be closed
            wait(futures)
    errors = [e for f in futures if (e := f.exception()) is not None]
    opened = [f.result() for f in futures if f.exception() is None]
    try:
        if errors:
            raise errors[0]
        yield [s.step for s in opened]
    finally:
        for session in opened:
            session.__exit__(None, None, None)


def phase_before(c: Client, step: Step) -> list[Event]:
    events = [e for s in connect_steps(c, PROBE_TIMEOUT) for e in step(**s)]
    events += step(**send_step(c, f"{c.sock}-before"))
    return events + step(**recv_step(c))


def phase_during(c: Client, step: Step) -> list[Event]:
    probe: list[Event] = []
    if c.column.kind == "stream":
        probe += step(**recv_step(c))
        probe += step(**send_step(c, f"{c.sock}-during1"))
        probe += step(**send_step(c, f"{c.sock}-during2"))
        probe += step(**recv_step(c))
    else:
        # Two datagrams, each waited on, as TCP sends two: a lesson judged from one would
        # rest on one ICMP, which the kernel may hold back (its rate limits). The cell
        # records both; a refusal missed cites the struck host's counters (kernel.py,
        # docs/experiments.md).
        probe += step(**send_step(c, f"{c.sock}-during1"))
        probe += step(**recv_step(c))
        probe += step(**send_step(c, f"{c.sock}-during2"))
        probe += step(**recv_step(c))
    return probe


def phase_after(c: Client, step: Step) -> tuple[list[Event], Client, list[Event]]:
    """The same socket (waiting up to AFTER_TIMEOUT for TCP's resend), then a new one."""
    after: list[Event] = []
    step(op="timeout", sock=c.sock, seconds=AFTER_TIMEOUT)
    after += step(**send_step(c, f"{c.sock}-after"))
    while True:
        got = step(**recv_step(c))
        after += got
        if got[-1].outcome != "ok":
            break
        step(op="timeout", sock=c.sock, seconds=PROBE_TIMEOUT)
    fresh = Client(c.column, c.sock + FRESH, address=c.address)
    new_events = [e for s in connect_steps(fresh, AFTER_TIMEOUT) for e in step(**s)]
    new_events += step(**send_step(fresh, f"{fresh.sock}-check"))
    new_events += step(**recv_step(fresh))
    return after, fresh, new_events


def phase_close(c: Client, step: Step) -> None:
    """The row's sockets, closed: the session goes on to the next row."""
    for sock in (c.sock, c.sock + FRESH):
        step(op="close", sock=sock)


def shifted(cell: Cell, start: float, t0: float) -> Cell:
    """A cell's times counted from its row's start (its picture's "since the clients
    connected"), not from the matrix's."""
    cell.events = [replace(e, t=round(e.t - start, 6)) for e in cell.events]
    cell.fault_at -= start
    cell.recovered_at -= start
    cell.t0 = t0 + start
    return cell
