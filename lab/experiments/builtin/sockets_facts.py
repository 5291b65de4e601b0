"""The sockets experiment's observations, read (pure but for ``until_shown``): the rows
of the hosts' socket tables, the traced system calls, and the states its run waits for.

A step that must wait for the kernel (a FIN or an RST to cross, a killed process's
sockets to close) reads the tables again and again until the state awaited shows, to a
deadline (``until_shown``); the last reading is judged as it is, and a claim that
fails on it while the state never showed says so (``resting_on``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from lab.experiments.model import Judgement
from lab.services.probes.porttable import HostSocket
from lab.syscalls.strace import Syscall

# Seconds for a state to show in /proc (a FIN or an RST crossing a bridge takes well under
# a millisecond; a loaded machine may take far longer) before it counts as not observed.
DEADLINE = 5.0
POLL = 0.02  # seconds between two readings (each reading itself takes a docker exec)
Reading = dict[str, Any]  # {"t": seconds, host: [HostSocket as a dict, ...], ...}
Shown = Callable[[Reading], bool]  # whether a reading shows the state awaited


class Clocked(Protocol):
    """What ``until_shown`` needs of the experiment's context."""

    def clock(self) -> float: ...
    def wait(self, seconds: float) -> None: ...


def until_shown(
    read: Callable[[], Reading], shown: Shown, want: str, ctx: Clocked
) -> tuple[Reading, dict[str, Any]]:
    """``read()`` until ``shown`` holds or DEADLINE passes: the last reading, and the wait
    as a fact (what was awaited, whether and after how long it showed)."""
    start = ctx.clock()
    while True:
        taken = read()
        reached = shown(taken)
        if reached or ctx.clock() - start >= DEADLINE:
            break
        ctx.wait(POLL)
    after = round(ctx.clock() - start, 3)
    return taken, {"want": want, "reached": reached, "after_s": after, "deadline_s": DEADLINE}


def resting_on(facts: dict[str, Any], *names: str) -> Callable[[Judgement], Judgement]:
    """A claim judged on a reading the run waited for: when it fails and a state awaited
    never showed, it is not observed, and says what did not show before what it saw."""
    missed = [w for n in names if not (w := waits_of(facts, n)).get("reached", True)]

    def wrap(judgement: Judgement) -> Judgement:
        def judged() -> tuple[bool, str]:
            try:
                held, observed = judgement()
            except (LookupError, ValueError) as exc:
                if not missed:
                    raise
                held, observed = False, str(exc)
            if held or not missed:
                return held, observed
            late = "; ".join(f"{w['want']}, within {w['deadline_s']} s" for w in missed)
            raise LookupError(f"{late} (then: {observed})")

        return judged

    return wrap


def waits_of(facts: dict[str, Any], name: str) -> dict[str, Any]:
    """How the run's wait for ``name`` ended ({} in results recorded before it polled)."""
    wait: dict[str, Any] = facts.get("waits", {}).get(name, {})
    return wait


def waited(facts: dict[str, Any], name: str) -> str:
    """How the reading ``name`` was waited for, for its table's title ("" if it was not)."""
    wait = waits_of(facts, name)
    if not wait:
        return ""
    if wait["reached"]:
        return f", shown after {ms(wait['after_s'])}"
    return f"; NOT shown within {wait['deadline_s']} s: {wait['want']}"


def listed(taken: dict[str, Any], host: str, **match: str) -> list[HostSocket]:
    """The rows of ``host`` in one reading of the tables whose fields equal ``match``."""
    rows = (HostSocket(**r) for r in taken[host])
    return [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]


def time_wait_shown(taken: dict[str, Any], client: str, server: str, local: str) -> bool:
    """The client closed ``local`` first: its end in TIME_WAIT, the server's entry gone (its
    FIN sent and acknowledged)."""
    return bool(listed(taken, client, local=local, state="TIME_WAIT")) and not listed(
        taken, server, remote=local
    )


def close_wait_shown(taken: dict[str, Any], client: str, server: str, local: str) -> bool:
    """The client closed ``local``, the server never did: CLOSE_WAIT there, FIN_WAIT2 here."""
    return bool(listed(taken, server, remote=local, state="CLOSE_WAIT")) and bool(
        listed(taken, client, local=local, state="FIN_WAIT2")
    )


def restart_shown(taken: dict[str, Any], server: str, local: str, port: int) -> bool:
    """The server closed first: its end of the connection from ``local`` in TIME_WAIT (the
    client's FIN arrived), and no listener left on ``port``."""
    listening = [r for r in listed(taken, server, state="LISTEN") if r.local.endswith(f":{port}")]
    return bool(listed(taken, server, remote=local, state="TIME_WAIT")) and not listening


def calls_of(facts: dict[str, Any], name: str) -> list[Syscall]:
    return [Syscall(**c) for c in facts["traces"][name]]


def snapshot_time(facts: dict[str, Any], name: str) -> float:
    return float(facts["snapshots"][name]["t"])


def rows_of(facts: dict[str, Any], snapshot: str, host: str) -> list[HostSocket]:
    return [HostSocket(**r) for r in facts["snapshots"][snapshot][host]]


def last_before(calls: list[Syscall], t: float, name: str, new_fd: int | None) -> Syscall:
    """The last ``name`` call before ``t`` that returned ``new_fd``."""
    found = [c for c in calls if c.name == name and c.new_fd == new_fd and c.t < t]
    if not found:
        raise LookupError(f"no {name}() returned fd {new_fd} before {ms(t)}")
    return found[-1]


def reuse_set(calls: list[Syscall], bind: Syscall) -> bool:
    """Whether SO_REUSEADDR was set on ``bind``'s fd after the socket() that made it."""
    made = last_before(calls, bind.t, "socket", bind.fd)
    return any(
        c.name == "setsockopt" and c.fd == bind.fd and "SO_REUSEADDR, [1]" in c.args
        for c in calls
        if made.t < c.t < bind.t
    )


def first(items: Iterable[Any], what: str) -> Any:
    """The first of ``items``; LookupError (a claim not observed) when there is none."""
    for item in items:
        return item
    raise LookupError(f"no {what}")


def one(rows: Iterable[Any], what: str) -> Any:
    found = list(rows)
    if len(found) != 1:
        raise LookupError(f"{len(found)} of {what}, not one")
    return found[0]


def ms(t: float) -> str:
    return f"{t * 1000:.1f} ms"
