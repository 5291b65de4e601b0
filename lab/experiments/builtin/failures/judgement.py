"""A cell from its recorded socket events, and whether it shows what was expected: pure
functions of observations, run again on a saved result."""

from __future__ import annotations

import re

from lab.experiments.builtin.failures.expectations import Expect
from lab.experiments.builtin.failures.model import Cell, Column
from lab.experiments.builtin.failures.steps import FRESH, Client, answered_tags
from lab.services.probes.sockscript import Event, raw

UNSEEN = "unseen"  # a during window with no receive in it: no outcome to name


def sent_tags(events: list[Event], sock: str) -> list[str]:
    """The tags of the messages a socket sent, in order, read back from its send events
    (each message carries its tag: a shout's text, an ECHO's argument, a URL's query)."""
    tag = re.compile(re.escape(sock).encode() + rb"-(?:before|during\d+|after|check)")
    found = []
    for e in events:
        if e.sock == sock and e.op.startswith("send") and e.data:
            match = tag.search(raw(e.data))
            if match:
                found.append(match.group().decode())
    return found


def derive(
    row: str, column: Column, events: list[Event], fault_at: float, recovered_at: float
) -> Cell:
    """A cell from its socket events alone: the held socket's events before the fault,
    while it was in place, and after recovery (by their times), the new socket's, and
    the messages each sent. The run and the judgement both make cells this way."""
    sock = column.sock
    held = [e for e in events if e.sock == sock]
    before = [e for e in held if e.t < fault_at]
    during = [e for e in held if fault_at <= e.t < recovered_at]
    after = [e for e in held if e.t >= recovered_at]
    new_events = [e for e in events if e.sock == sock + FRESH]
    c = Client(column, sock, sent_tags(events, sock))
    fresh = Client(column, sock + FRESH, sent_tags(events, sock + FRESH))
    return cell_of(row, c, fresh, before, during, after, new_events, fault_at, recovered_at)


def cell_of(
    row: str,
    c: Client,
    fresh: Client,
    before: list[Event],
    during: list[Event],
    after: list[Event],
    new_events: list[Event],
    fault_at: float,
    recovered_at: float,
) -> Cell:
    got_after = b"".join(
        raw(e.data or "") for e in after if e.op.startswith("recv") and e.outcome == "ok"
    )
    got_during = b"".join(
        raw(e.data or "") for e in during if e.op.startswith("recv") and e.outcome == "ok"
    )
    in_fault = [t for t in c.sent if "-during" in t]
    answered_during = answered_tags(c, got_during, in_fault)
    still_waiting = [t for t in in_fault if t not in answered_during]
    answered_after = answered_tags(c, got_after, [*still_waiting, f"{c.sock}-after"])
    late = [t for t in still_waiting if t in answered_after]
    lost = [t for t in still_waiting if t not in answered_after]
    errors = [e for e in during if e.outcome not in ("ok", "timeout")]
    # When the client found out: the end of its first call that reported the fault
    # (every client of a row is probed at the same time, from the fault on).
    noticed = round(max(0.0, errors[0].t + errors[0].dt - fault_at), 3) if errors else None
    new_reply = b"".join(
        raw(e.data or "") for e in new_events if e.op.startswith("recv") and e.outcome == "ok"
    )
    return Cell(
        row=row,
        client=c.name,
        during=during_verdict(during),
        noticed_after_s=noticed,
        old_socket_works=f"{c.sock}-after" in answered_after,
        new_socket_works=bool(answered_tags(fresh, new_reply, fresh.sent)),
        lost=lost,
        late=late,
        events=[*before, *during, *after, *new_events],
        fault_at=fault_at,
        recovered_at=recovered_at,
    )


def during_verdict(events: list[Event]) -> str:
    """Name what the client saw while the fault was in place.

    answered         a reply came
    refused          ECONNREFUSED
    eof-then-epipe   EOF on receive, then a send failed with EPIPE (or the connection reset)
    reset            the connection was reset (RST) with no EOF first
    eof-then-silent  EOF, then sends succeeded and nothing more came
    silent           every send succeeded and every receive timed out
    unseen           no receive was made while the fault was in place: nothing to judge
    """
    outcomes = [e.outcome for e in events]
    recvs = [e for e in events if e.op.startswith("recv")]
    if not events:
        return UNSEEN
    if any(e.outcome == "ok" and e.nbytes is not None for e in recvs):
        return "answered"
    if "ECONNREFUSED" in outcomes:
        return "refused"
    if "eof" in outcomes and ("EPIPE" in outcomes or "ECONNRESET" in outcomes):
        return "eof-then-epipe"
    if "ECONNRESET" in outcomes:
        return "reset"
    if "eof" in outcomes and all(o in ("ok", "eof", "timeout") for o in outcomes):
        return "eof-then-silent"
    if all(o in ("ok", "timeout") for o in outcomes):
        # Silence is a receive that waited and got nothing: sends alone prove none.
        return "silent" if any(e.outcome == "timeout" for e in recvs) else UNSEEN
    return "other: " + ", ".join(f"{e.op} {e.outcome}" for e in events)


def unjudged(cell: Cell) -> str | None:
    """Why a cell cannot be judged, or None: a window with no receive in it proves no
    outcome (``all`` over nothing would have called it silent)."""
    if cell.during != UNSEEN:
        return None
    return (
        f"not judged: no receive recorded between the fault ({cell.fault_at:.3f} s) and "
        f"the recovery ({cell.recovered_at:.3f} s)"
    )


def unrefused(cell: Cell, sock: str) -> int:
    """How many of the held socket's receives while the fault was in place timed out: each
    a message that drew neither an answer nor an error."""
    return sum(
        1
        for e in cell.events
        if e.sock == sock
        and e.op.startswith("recv")
        and e.outcome == "timeout"
        and cell.fault_at <= e.t < cell.recovered_at
    )


def judge(cell: Cell, expect: Expect) -> bool:
    if cell.during not in expect.admits or cell.old_socket_works != expect.old:
        return False
    if not cell.new_socket_works:
        return False
    if expect.late is True:
        return bool(cell.late) and not cell.lost
    if expect.late is False:
        return not cell.late and bool(cell.lost)
    return True
