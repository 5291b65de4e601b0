"""failures: what each client sees when a process dies, a host vanishes, a process freezes,
a network is cut, or a server restarts.

Each row of the matrix is one fault, applied to its targets at once and then
undone; each column is one client on the client host, holding its socket open
across the fault. The columns come from the topology: one per port a process
declares in a protocol the matrix can recognise an answer in (shout, echo,
http, resp); a UDP port gets two, an unconnected socket and a connected one
(``NAME-connected``). On the default lab:

  tcp-shout            an established TCP connection
  udp-shout            an unconnected UDP socket (sendto/recvfrom)
  udp-shout-connected  a connected UDP socket
  http                 a kept-alive HTTP/1.1 connection
  db                   a RESP connection

For every cell the timeline records what the next receive and sends returned
after the fault, when the client first noticed, which messages were lost or
answered late, and whether the old socket worked again after recovery or a new
one was needed. Waits are bounded (PROBE_TIMEOUT, AFTER_TIMEOUT): where TCP
would keep retransmitting for minutes, the cell says "no answer within N s".
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from lab.errors import ScheduleError
from lab.experiments.model import (
    Claim,
    Context,
    Experiment,
    Observations,
    Result,
    Verdict,
)
from lab.interrupts import ctrl_c_ignored
from lab.services.probes.sockscript import Event, raw
from lab.services.protocols.resp import encode_command
from lab.topology import Topology
from lab.traffic.clients import http_request

PROBE_TIMEOUT = 1.0  # how long a client waits for an answer while the fault is in place
# After recovery, how long the same socket may take to answer. A TCP segment lost in a
# partition is resent on a timer that doubles each time (0.2 s, 0.4 s, ... 6.4 s, 12.8 s):
# after a cut of ~8 s the next resend can be ~13 s away. Nothing comes sooner.
AFTER_TIMEOUT = 15.0
MATRIX_PROTOCOLS = ("shout", "echo", "http", "resp")  # answers the matrix can recognise
FAULTS = ("kill", "stop", "pause", "cut", "restart", "isolate", "sever")  # mending is undoing
MACHINE_FAULTS = ("isolate", "sever")  # a lab across machines only (docs/scale-out.md)
EVERY_PROCESS = "every-process"  # row targets resolved against the topology
EVERY_HOST = "every-host"


# --- the matrix ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One fault: what is done to which targets, and how it is undone."""

    name: str
    title: str
    fault: str  # a lab.chaos.faults kind
    targets: tuple[str, ...]
    at: float = 0.0  # seconds after the clients are connected
    settle: bool = False  # probe only once the lab is healthy again (a restart's lesson)


DEFAULT_ROWS = (
    Row("process-crash", "process killed (SIGKILL), host alive", "kill", (EVERY_PROCESS,)),
    Row("graceful-stop", "process stopped (SIGTERM)", "stop", (EVERY_PROCESS,)),
    Row("host-crash", "host killed: its IP is gone", "kill", (EVERY_HOST,)),
    Row("freeze", "process frozen (docker pause), then resumed", "pause", (EVERY_PROCESS,)),
    Row("partition", "host cut off the network, then reconnected", "cut", (EVERY_HOST,)),
    Row(
        "restart",
        "process restarted on the same IP and port",
        "restart",
        (EVERY_PROCESS,),
        settle=True,
    ),
)


# What only a lab across machines can suffer: added when the hosts are on several machines,
# each striking the machines of the servers that are not on the client's own machine.
MACHINE_ROWS = (
    Row(
        "machine-lost",
        "the server's whole machine cut off from every other machine, then back",
        "isolate",
        (EVERY_HOST,),
    ),
    Row(
        "machines-link-cut",
        "the link between the client's machine and the server's cut, both machines alive",
        "sever",
        (EVERY_HOST,),
    ),
)


@dataclass(frozen=True)
class Column:
    """One client of the matrix: a socket kind towards one port of one process."""

    name: str  # also the claim id's second part
    kind: str  # stream, udp or udp-connected
    protocol: str  # shout, echo, http or resp
    process: str
    host: str
    port: int

    @property
    def sock(self) -> str:
        return self.name.replace("-", "_").replace(":", "_")


def columns_of(topology: Topology) -> list[Column]:
    """The matrix's clients on a topology: every declared port it can recognise answers on."""
    columns = []
    for e in topology.endpoints():
        if e.port.protocol not in MATRIX_PROTOCOLS or topology.hosts[e.host].role == "client":
            continue
        several = len(topology.processes[e.process].ports) > 1
        name = f"{e.process}-{e.port.number}{e.port.transport}" if several else e.process
        if e.port.transport == "tcp":
            columns.append(
                Column(name, "stream", e.port.protocol, e.process, e.host, e.port.number)
            )
        else:
            for kind, label in (("udp", name), ("udp-connected", f"{name}-connected")):
                columns.append(
                    Column(label, kind, e.port.protocol, e.process, e.host, e.port.number)
                )
    return columns


def resolve_rows(
    rows: tuple[Row, ...], columns: list[Column], topology: Topology | None = None
) -> tuple[Row, ...]:
    """Rows with ``every-process``/``every-host`` replaced by the servers of the columns.

    A machine fault strikes only hosts on another machine than the client's (on its
    own machine a client is not cut off from anything); a row left with none is dropped.
    """
    processes = tuple(dict.fromkeys(c.process for c in columns))
    hosts = tuple(dict.fromkeys(c.host for c in columns))
    machines = topology.machines if topology is not None else {}
    here = machines.get(topology.client.name, "") if topology is not None and machines else ""
    resolved = []
    for row in rows:
        targets: list[str] = []
        for target in row.targets:
            targets += {EVERY_PROCESS: processes, EVERY_HOST: hosts}.get(target, (target,))
        if row.fault in MACHINE_FAULTS:
            targets = [t for t in targets if machines.get(t, here) != here]
            if not targets:
                continue
        resolved.append(replace(row, targets=tuple(dict.fromkeys(targets))))
    return tuple(resolved)


@dataclass(frozen=True)
class Expect:
    """What a cell should show. ``during``: see ``during_verdict``; ``old``: does the very
    socket work again after recovery; ``late``: are messages sent during the fault answered
    after it (True), lost (False), or is there nothing to say (None)."""

    during: str
    old: bool
    late: bool | None
    why: str


# The expected outcome of every kind of cell, as the Linux kernel behaves (Docker bridge
# network): by the fault's kind, whether it struck the server's host or only the server
# process, and the client's kind of socket.
_TCP_DEATH = Expect(
    "eof-then-epipe",
    False,
    False,
    "the kernel closes the dead process's socket (FIN: recv sees EOF); the next "
    "send draws an RST and the one after fails with EPIPE (BrokenPipeError)",
)
_SILENT_TCP = Expect(
    "silent",
    True,
    True,
    "nothing comes back, not even an error; the data waits in kernel buffers "
    "and is answered once the peer is back",
)
_HOST_GONE_TCP = Expect(
    "eof-then-silent",
    False,
    False,
    "the dying process's FIN still gets out (EOF), but then the address is gone: sends "
    "succeed into the void, no RST, no error; after the host returns, its new kernel "
    "knows no such connection and resets it",
)
_UNTOUCHED = Expect(
    "answered",
    True,
    None,
    "pausing a host's container freezes only its own init: the processes are containers "
    "of their own, so they and the host's kernel go on answering",
)
_ACROSS_A_CUT = Expect(
    "silent",
    True,
    True,
    "TCP retransmits into the cut between the machines; once they are joined again the "
    "retransmission crosses the overlay and the same connection carries on",
)
EXPECTED: dict[tuple[str, bool, str], Expect] = {
    # (fault kind, struck the server's host, client kind)
    ("kill", False, "stream"): _TCP_DEATH,
    ("kill", False, "udp"): Expect(
        "silent",
        True,
        False,
        "the ICMP port unreachable is ignored by an unconnected socket; "
        "the datagram is lost; after restart the same socket works",
    ),
    ("kill", False, "udp-connected"): Expect(
        "refused",
        True,
        False,
        "ICMP port unreachable comes back and a connected socket "
        "reports it as ECONNREFUSED; after restart the same socket works",
    ),
    ("stop", False, "stream"): _TCP_DEATH,
    ("stop", False, "udp"): Expect("silent", True, False, "as for a crash: no socket, no reply"),
    ("stop", False, "udp-connected"): Expect(
        "refused", True, False, "as for a crash: ICMP port unreachable"
    ),
    ("kill", True, "stream"): _HOST_GONE_TCP,
    ("kill", True, "udp"): Expect("silent", True, False, "no host, no ICMP: only silence"),
    ("kill", True, "udp-connected"): Expect(
        "silent",
        True,
        False,
        "no host, so no ICMP either: even a connected socket hears "
        "nothing; the same socket works once the host is back",
    ),
    ("stop", True, "stream"): _HOST_GONE_TCP,
    ("stop", True, "udp"): Expect("silent", True, False, "as for a host crash: silence"),
    ("stop", True, "udp-connected"): Expect(
        "silent", True, False, "as for a host crash: no host, no ICMP"
    ),
    ("pause", False, "stream"): _SILENT_TCP,
    ("pause", False, "udp"): Expect(
        "silent",
        True,
        True,
        "the datagram waits in the frozen process's socket buffer and is answered after resume",
    ),
    ("pause", False, "udp-connected"): Expect(
        "silent", True, True, "the socket still exists, so no ICMP: a late answer"
    ),
    ("pause", True, "stream"): _UNTOUCHED,
    ("pause", True, "udp"): _UNTOUCHED,
    ("pause", True, "udp-connected"): _UNTOUCHED,
    ("cut", True, "stream"): Expect(
        "silent",
        True,
        True,
        "TCP retransmits into the cut; after the cable is back the "
        "retransmission gets through and the same connection carries on",
    ),
    ("cut", True, "udp"): Expect(
        "silent", True, False, "the datagram is lost in the cut; UDP never resends it"
    ),
    ("cut", True, "udp-connected"): Expect(
        "silent", True, False, "lost in the cut, and no ICMP either"
    ),
    # A machine cut off (from all, or from the client's machine only): the overlay's
    # VXLAN frames are dropped on the underlay, both kernels live on, nothing answers.
    ("isolate", True, "stream"): _ACROSS_A_CUT,
    ("isolate", True, "udp"): Expect(
        "silent", True, False, "the datagram is lost with the machine; UDP never resends it"
    ),
    ("isolate", True, "udp-connected"): Expect(
        "silent", True, False, "lost, and no ICMP: the machine that would send one is cut off"
    ),
    ("sever", True, "stream"): _ACROSS_A_CUT,
    ("sever", True, "udp"): Expect(
        "silent", True, False, "lost on the cut link between the two machines"
    ),
    ("sever", True, "udp-connected"): Expect(
        "silent", True, False, "lost on the cut link, and no ICMP comes back over it"
    ),
    ("restart", False, "stream"): _TCP_DEATH,
    ("restart", False, "udp"): Expect(
        "answered",
        True,
        None,
        "a new process on the same port answers the same socket: "
        'UDP keeps no connection to lose ("udp works tho")',
    ),
    ("restart", False, "udp-connected"): Expect(
        "answered", True, None, "the same: the restarted server answers at once"
    ),
    ("restart", True, "stream"): _TCP_DEATH,
    ("restart", True, "udp"): Expect(
        "answered", True, None, "host and process are back on the same address: it answers"
    ),
    ("restart", True, "udp-connected"): Expect(
        "answered", True, None, "the same, for a connected socket"
    ),
}


def expectation(row: Row, column: Column) -> Expect | None:
    """What a client should see in a row; None when the row does not touch its server."""
    hits_host = column.host in row.targets
    if column.process not in row.targets and not hits_host:
        return None
    return EXPECTED.get((row.fault, hits_host, column.kind))


def claims_of(rows: tuple[Row, ...], columns: list[Column]) -> tuple[Claim, ...]:
    """A claim for every cell a row strikes, from what its fault kind predicts there."""
    claims = []
    for row in rows:
        for column in columns:
            expect = expectation(row, column)
            if expect is not None:
                title = row.title or f"{row.fault} {', '.join(row.targets)}"
                claims.append(
                    Claim(f"{row.name}.{column.name}", f"{title} / {column.name}: {expect.why}")
                )
    return tuple(claims)


@dataclass(frozen=True)
class Bystander:
    """A probe that tells the two machine faults apart: from a struck host to a host on a
    third machine (neither the struck one's nor the client's). ``sever`` cuts only the
    link to the client's machine, so the connect succeeds; ``isolate`` cuts the struck
    machine from every other, so it cannot."""

    row: str
    fault: str
    src: str
    dst: str
    address: str
    port: int

    @property
    def id(self) -> str:
        return f"{self.row}.{self.src}-reaches-{self.dst}"

    def claim(self) -> Claim:
        if self.fault == "sever":
            return Claim(
                self.id,
                f"only the link to the client's machine is cut: {self.src} still reaches "
                f"{self.dst} on a third machine",
            )
        return Claim(
            self.id,
            f"the whole machine is cut off: {self.src} reaches no other machine, not even "
            f"{self.dst} on a third",
        )


BYSTANDER_KEYS = ("row", "fault", "src", "dst", "address", "port")


def bystanders(rows: tuple[Row, ...], topology: Topology) -> list[Bystander]:
    """For each struck host of each machine row, one host on a third machine with a TCP
    port to connect to (none when the lab has no third machine). Pure."""
    machines = topology.machines
    here = machines.get(topology.client.name, "")
    probes = []
    for row in rows:
        if row.fault not in MACHINE_FAULTS:
            continue
        for src in row.targets:
            for dst, host in topology.hosts.items():
                if machines.get(dst, here) in (here, machines.get(src, here)):
                    continue
                ports = [
                    p.number
                    for name in host.processes
                    for p in topology.processes[name].ports
                    if p.transport == "tcp"
                ]
                if ports:
                    probes.append(Bystander(row.name, row.fault, src, dst, host.ip, min(ports)))
                    break
    return probes


def judge_bystander(fault: str, events: list[Event]) -> Verdict:
    """Whether the probe's connect did what the fault predicts, from its recorded events."""
    connects = [e for e in events if e.op == "connect"]
    outcome = connects[0].outcome if connects else "no connect recorded"
    reached = outcome == "ok"
    return Verdict(reached if fault == "sever" else bool(connects) and not reached,
                   f"connect {outcome}")  # fmt: skip


def _probe(ctx: Context, probe: Bystander) -> dict[str, Any]:
    # A short timeout: the probe runs inside the cut, which stays brief (each second of
    # it is a second of the whole matrix).
    events = ctx.lab.run(
        [
            {"op": "socket", "sock": "b", "type": "tcp", "timeout": 1.0},
            {"op": "connect", "sock": "b", "host": probe.address, "port": probe.port},
            {"op": "close", "sock": "b"},
        ],
        on=probe.src,
    )
    return {**asdict(probe), "events": [asdict(e) for e in events]}


# --- one client's conversation, as session steps ----------------------------------------


@dataclass
class Client:
    column: Column
    sock: str
    sent: list[str] = field(default_factory=list)  # tags of messages sent, in order
    address: str = ""  # udp: the server's IP, looked up once (a dead host has no DNS name)

    @property
    def name(self) -> str:
        return self.column.name

    def message(self, tag: str) -> dict[str, Any]:
        """The payload of one message, tagged so its answer can be recognised."""
        self.sent.append(tag)
        if self.column.protocol == "http":
            return {"data": http_request("GET", f"/healthz?{tag}", "lab", close=False)}
        if self.column.protocol == "resp":
            return {"hex": encode_command("ECHO", tag).hex()}
        return {"data": tag}


def answered_tags(client: Client, received: bytes, waiting: list[str]) -> list[str]:
    """Which of the messages ``waiting`` for an answer the received bytes answer."""
    protocol = client.column.protocol
    if protocol == "http":
        # Answers come strictly in order, one status line each (whatever the status).
        return waiting[: received.count(b"HTTP/1.1 ") + received.count(b"HTTP/1.0 ")]
    if protocol == "resp":
        return [t for t in waiting if f"${len(t)}\r\n{t}\r\n".encode() in received]
    if protocol == "shout":
        return [t for t in waiting if t.upper().encode() in received]
    return [t for t in waiting if t.encode() in received]


def connect_steps(client: Client, timeout: float) -> list[dict[str, Any]]:
    c = client.column
    kind = "tcp" if c.kind == "stream" else "udp"
    steps: list[dict[str, Any]] = [
        {"op": "socket", "sock": client.sock, "type": kind, "timeout": timeout}
    ]
    if c.kind != "udp":
        steps.append({"op": "connect", "sock": client.sock, "host": client.address, "port": c.port})
    return steps


def send_step(client: Client, tag: str) -> dict[str, Any]:
    if client.column.kind == "udp":
        return {
            "op": "sendto",
            "sock": client.sock,
            "host": client.address,
            "port": client.column.port,
            **client.message(tag),
        }
    return {"op": "send", "sock": client.sock, **client.message(tag)}


def recv_step(client: Client) -> dict[str, Any]:
    return {"op": "recvfrom" if client.column.kind == "udp" else "recv", "sock": client.sock}


# --- verdicts from observations -------------------------------------------------------------


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


def _before(c: Client, step: Step) -> list[Event]:
    events = [e for s in connect_steps(c, PROBE_TIMEOUT) for e in step(**s)]
    events += step(**send_step(c, f"{c.sock}-before"))
    return events + step(**recv_step(c))


def _during(c: Client, step: Step) -> list[Event]:
    probe: list[Event] = []
    if c.column.kind == "stream":
        probe += step(**recv_step(c))
        probe += step(**send_step(c, f"{c.sock}-during1"))
        probe += step(**send_step(c, f"{c.sock}-during2"))
        probe += step(**recv_step(c))
    else:
        # Two datagrams, each waited on, as TCP sends two: in CI the first one after a
        # process kill twice drew no ICMP within its second (cause not found; no ICMP rate
        # limiting was counted), and a lesson judged from one datagram would rest on it.
        # The cell still records that the first went unanswered.
        probe += step(**send_step(c, f"{c.sock}-during1"))
        probe += step(**recv_step(c))
        probe += step(**send_step(c, f"{c.sock}-during2"))
        probe += step(**recv_step(c))
    return probe


def _after(c: Client, step: Step) -> tuple[list[Event], Client, list[Event]]:
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
    fresh = Client(c.column, c.sock + "_new", address=c.address)
    new_events = [e for s in connect_steps(fresh, AFTER_TIMEOUT) for e in step(**s)]
    new_events += step(**send_step(fresh, f"{fresh.sock}-check"))
    new_events += step(**recv_step(fresh))
    return after, fresh, new_events


def _close(c: Client, step: Step) -> None:
    """The row's sockets, closed: the session goes on to the next row."""
    for sock in (c.sock, c.sock + "_new"):
        step(op="close", sock=sock)


def _shifted(cell: Cell, start: float, t0: float) -> Cell:
    """A cell's times counted from its row's start (its picture's "since the clients
    connected"), not from the matrix's."""
    cell.events = [replace(e, t=round(e.t - start, 6)) for e in cell.events]
    cell.fault_at -= start
    cell.recovered_at -= start
    cell.t0 = t0 + start
    return cell


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
    new_events = [e for e in events if e.sock == sock + "_new"]
    c = Client(column, sock, sent_tags(events, sock))
    fresh = Client(column, sock + "_new", sent_tags(events, sock + "_new"))
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
    """
    outcomes = [e.outcome for e in events]
    recvs = [e for e in events if e.op.startswith("recv")]
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
        return "silent"
    return "other: " + ", ".join(f"{e.op} {e.outcome}" for e in events)


@dataclass
class Cell:
    row: str
    client: str
    during: str
    noticed_after_s: float | None  # from the fault to the first EOF or error; None: never
    old_socket_works: bool
    new_socket_works: bool
    lost: list[str]
    late: list[str]
    events: list[Event]
    fault_at: float  # seconds since the clients connected; the faults were all in place
    recovered_at: float
    t0: float = 0.0  # CLOCK_MONOTONIC at which the cell's times start (to align its packets)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cell:
        """A cell back from a result's JSON (to redraw its picture, say)."""
        return cls(**{**data, "events": [Event(**e) for e in data["events"]]})

    def summary(self) -> str:
        noticed = (
            "not noticed"
            if self.noticed_after_s is None
            else f"noticed after {self.noticed_after_s * 1000:.0f} ms"
        )
        return (
            f"{self.during} ({noticed}); old socket "
            f"{'works' if self.old_socket_works else 'dead'} after recovery; "
            f"late answers {self.late or 'none'}; lost {self.lost or 'none'}"
        )


def judge(cell: Cell, expect: Expect) -> bool:
    if cell.during != expect.during or cell.old_socket_works != expect.old:
        return False
    if not cell.new_socket_works:
        return False
    if expect.late is True:
        return bool(cell.late) and not cell.lost
    if expect.late is False:
        return not cell.late and bool(cell.lost)
    return True


# --- schedules -----------------------------------------------------------------------------


def load_schedule(path: Path) -> tuple[list[Row], int]:
    """Rows from a YAML fault schedule, and its seed.

    seed: 7
    rows:
      - name: crash-one
        fault: kill                  # kill, stop, pause, cut (a host) or restart
        targets: [tcp-shout]         # or "random-process" / "random-host" (drawn with
        at: 0.5                      #   the seed), "every-process" / "every-host"
    """
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleError(f"cannot read schedule {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise ScheduleError(f"{path}: expected a mapping with a list of rows")
    seed = int(document.get("seed", 0))
    rows = []
    for i, item in enumerate(document["rows"]):
        try:
            targets = item["targets"]
            fault = str(item["fault"])
            rows.append(
                Row(
                    str(item.get("name", f"row-{i + 1}")),
                    str(item.get("title", "")),
                    fault,
                    (targets,) if isinstance(targets, str) else tuple(map(str, targets)),
                    float(item.get("at", 0.0)),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScheduleError(f"{path}: row {i + 1} is incomplete ({exc})") from None
        if fault not in FAULTS:
            raise ScheduleError(
                f"{path}: row {i + 1}: no fault {fault!r}", f"one of: {', '.join(FAULTS)}"
            )
    return rows, seed


def draw_targets(rows: tuple[Row, ...], seed: int, topology: Topology) -> tuple[Row, ...]:
    """``random-process``/``random-host`` drawn with the seed (a run replays exactly), and
    every named target checked against the topology."""
    columns = columns_of(topology)
    processes = list(dict.fromkeys(c.process for c in columns))
    hosts = list(dict.fromkeys(c.host for c in columns))
    rng = random.Random(seed)
    drawn = []
    for row in rows:
        targets: list[str] = []
        for target in row.targets:
            if target == "random-process":
                targets.append(rng.choice(processes))
            elif target == "random-host":
                targets.append(rng.choice(hosts))
            elif target in (EVERY_PROCESS, EVERY_HOST) or target in topology.services:
                targets.append(target)
            else:
                raise ScheduleError(
                    f"row {row.name}: no host or process {target!r}", f"known: {topology.known()}"
                )
        if row.fault in ("cut", *MACHINE_FAULTS) and any(t in topology.processes for t in targets):
            raise ScheduleError(f"row {row.name}: {row.fault} takes a host, not a process")
        if row.fault in MACHINE_FAULTS and not topology.machines:
            raise ScheduleError(
                f"row {row.name}: {row.fault} needs a lab across machines (--cluster)"
            )
        workbench = topology.client.name
        if workbench in targets:
            raise ScheduleError(
                f"row {row.name}: {workbench} is where the matrix's clients run",
                "fault the hosts and processes they talk to",
            )
        drawn.append(replace(row, targets=tuple(targets)))
    return resolve_rows(tuple(drawn), columns, topology)


# --- the experiment --------------------------------------------------------------------


class Failures(Experiment):
    name = "failures"
    question = (
        "What does each client see when a process dies, a host vanishes, a process "
        "freezes, the network is cut, or the server restarts?"
    )
    timeline = False  # hundreds of events: the matrix and its pictures tell it better

    def __init__(self, rows: tuple[Row, ...] = DEFAULT_ROWS, seed: int = 0) -> None:
        self.rows = rows
        self.seed = seed
        self.on_cell: Callable[[Cell], None] = lambda cell: None

    def plan(self, topology: Topology) -> tuple[tuple[Row, ...], list[Column]]:
        rows = self.rows
        if rows == DEFAULT_ROWS and len(set(topology.machines.values())) > 1:
            rows = (*rows, *MACHINE_ROWS)
        return draw_targets(rows, self.seed, topology), columns_of(topology)

    def claims_for(self, topology: Topology) -> tuple[Claim, ...]:
        rows, columns = self.plan(topology)
        return (*claims_of(rows, columns), *(b.claim() for b in bystanders(rows, topology)))

    def run(self, ctx: Context) -> None:
        rows, columns = self.plan(ctx.lab.topology)
        cells: list[Cell] = []
        self.probed: list[dict[str, Any]] = []
        if not columns:  # no port in a protocol the matrix reads: nothing to judge (exit 6)
            rows = ()
        # One socket session per client on the client host, for the whole matrix (opening
        # them is most of a row's first second); each row closes the sockets it opened.
        t0 = ctx.clock()
        host = ctx.lab.topology.client.name
        with (
            ThreadPoolExecutor(max_workers=max(1, len(columns))) as pool,
            sessions(ctx, host, t0, len(columns), pool) as steps,
        ):
            for row in rows:
                for cell in self.run_row(ctx, row, columns, t0, steps, pool):
                    cells.append(cell)
                    self.on_cell(cell)
        ctx.facts["seed"] = self.seed
        ctx.facts["rows"] = [asdict(r) for r in rows]
        ctx.facts["columns"] = [asdict(c) for c in columns]
        ctx.facts["cells"] = [asdict(c) for c in cells]
        ctx.facts["bystanders"] = self.probed

    def judge(self, seen: Observations) -> dict[str, Verdict]:
        rows = {r["name"]: Row(**{**r, "targets": tuple(r["targets"])}) for r in seen.facts["rows"]}
        columns = {c["name"]: Column(**c) for c in seen.facts["columns"]}
        verdicts = {}
        for data in seen.facts["cells"]:
            # Judged from the cell's recorded socket events, not from the labels the run
            # wrote beside them: the same derivation, again, from the observations.
            recorded = Cell.from_dict(data)
            cell = derive(
                recorded.row,
                columns[recorded.client],
                recorded.events,
                recorded.fault_at,
                recorded.recovered_at,
            )
            expect = expectation(rows[cell.row], columns[cell.client])
            if expect is not None:
                verdicts[f"{cell.row}.{cell.client}"] = Verdict(judge(cell, expect), cell.summary())
        for probe in seen.facts.get("bystanders", []):
            events = [Event(**e) for e in probe["events"]]
            verdict = judge_bystander(probe["fault"], events)
            where = f"{probe['src']} to {probe['dst']} ({probe['address']}:{probe['port']})"
            verdicts[Bystander(**{k: probe[k] for k in BYSTANDER_KEYS}).id] = Verdict(
                verdict.held, f"{where}: {verdict.observed}"
            )
        return verdicts

    def tables(self, result: Result) -> list[Any]:
        from lab.views import render

        verdicts = {c.id: c.held for c in result.checks}
        return [render.matrix_table(result.facts["cells"], verdicts)]

    def pictures(self, result: Result, folder: Path, frames: list[Any] | None = None) -> list[Path]:
        """One PNG timeline per cell (with its frames, when captured)."""
        from lab.packets import report as packet_report
        from lab.views import plots

        paths = []
        capture = result.capture or {}
        for data in result.facts["cells"]:
            cell = Cell.from_dict(data)
            marks = (
                packet_report.span_packets(
                    cell.events, cell.t0, frames, capture, result.lab["hosts"]
                )
                if frames
                else []
            )
            paths.append(plots.cell_timeline(cell, folder / f"{cell.row}-{cell.client}.png", marks))
        return paths

    def run_row(
        self,
        ctx: Context,
        row: Row,
        columns: list[Column],
        t0: float,
        steps: list[Step],
        pool: ThreadPoolExecutor,
    ) -> list[Cell]:
        """One fault, and every client side by side, each in its own session (``steps``,
        their times counted from ``t0``): the phases (before, during, after) in step for
        all of them, so that each client meets the fault at the same moment and the row
        lasts as long as its slowest client, not as long as all of them in turn."""
        lab = ctx.lab
        start = ctx.clock() - t0  # this row's times are shifted to count from here
        clients = [Client(c, c.sock, address=lab.topology.hosts[c.host].ip) for c in columns]
        each = dict(zip((c.name for c in clients), steps, strict=True))

        def side_by_side(phase: Callable[[Client, Step], Any]) -> dict[str, Any]:
            done = pool.map(lambda c: phase(c, each[c.name]), clients)
            return dict(zip((c.name for c in clients), done, strict=True))

        # 1. connect, and one exchange each so every connection is known to work
        before = side_by_side(_before)
        ctx.wait(row.at)
        # 2. the fault, undone however this block ends
        with lab.fault(row.fault, *row.targets):
            fault_at = ctx.clock() - t0
            if row.settle:
                lab.wait_healthy()
            # The probes beside the clients, not after them: they would make the cut longer.
            probes = bystanders((row,), lab.topology)
            with ThreadPoolExecutor(max_workers=max(1, len(probes))) as beside:
                probing = [beside.submit(_probe, ctx, p) for p in probes]
                during = side_by_side(_during)
                self.probed += [f.result() for f in probing]
        recovered_at = ctx.clock() - t0
        # 3. after recovery: the same socket, then a new one
        after = side_by_side(_after)
        side_by_side(_close)  # (a row that fails ends the matrix: its sessions close then)
        cells = []
        for c in clients:
            old, _, new_events = after[c.name]
            events = [*before[c.name], *during[c.name], *old, *new_events]
            cell = derive(row.name, c.column, events, fault_at, recovered_at)
            cells.append(_shifted(cell, start, t0))
        return cells
