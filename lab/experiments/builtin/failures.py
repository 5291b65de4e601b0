"""failures: what each client sees when a process dies, a host vanishes, a process freezes,
a network is cut, or a server restarts.

Each row of the matrix is one fault, applied to every server at once and then
undone; each column is one client on the client host, holding its socket open
across the fault:

  tcp            an established TCP connection to tcp-shout
  udp            an unconnected UDP socket (sendto/recvfrom) to udp-shout
  udp-connected  a connected UDP socket to udp-shout
  http           a kept-alive HTTP/1.1 connection to http
  resp           a RESP connection to db

For every cell the timeline records what the next receive and sends returned
after the fault, when the client first noticed, which messages were lost or
answered late, and whether the old socket worked again after recovery or a new
one was needed. Waits are bounded (PROBE_TIMEOUT, AFTER_TIMEOUT): where TCP
would keep retransmitting for minutes, the cell says "no answer within N s".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.chaos.faults import injected
from lab.engine.session import ScriptSession
from lab.errors import LabError
from lab.experiments.model import Claim, Context, Experiment
from lab.progress import silent
from lab.traffic.clients import http_request
from services.probes.sockscript import Event, raw
from services.protocols.resp import encode_command

PROBE_TIMEOUT = 1.0  # how long a client waits for an answer while the fault is in place
# After recovery, how long the same socket may take to answer. A TCP segment lost in a
# partition is resent on a timer that doubles each time (0.2 s, 0.4 s, ... 6.4 s, 12.8 s):
# after a cut of ~8 s the next resend can be ~13 s away. Nothing comes sooner.
AFTER_TIMEOUT = 15.0
PROCESSES = ("tcp-shout", "udp-shout", "http", "db")
HOSTS = ("apphost", "shouthost")


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
    Row("process-crash", "process killed (SIGKILL), host alive", "kill", PROCESSES),
    Row("graceful-stop", "process stopped (SIGTERM)", "stop", PROCESSES),
    Row("host-crash", "host killed: its IP is gone", "kill", HOSTS),
    Row("freeze", "process frozen (docker pause), then resumed", "pause", PROCESSES),
    Row("partition", "host cut off the network, then reconnected", "cut", HOSTS),
    Row("restart", "process restarted on the same IP and port", "restart", PROCESSES, settle=True),
)

CLIENTS = ("tcp", "udp", "udp-connected", "http", "resp")
SERVER = {
    "tcp": "tcp-shout",
    "udp": "udp-shout",
    "udp-connected": "udp-shout",
    "http": "http",
    "resp": "db",
}
STREAM = ("tcp", "http", "resp")


@dataclass(frozen=True)
class Expect:
    """What a cell should show. ``during``: see ``during_verdict``; ``old``: does the very
    socket work again after recovery; ``late``: are messages sent during the fault answered
    after it (True), lost (False), or is there nothing to say (None)."""

    during: str
    old: bool
    late: bool | None
    why: str


# The expected outcome of every cell, as the Linux kernel behaves (Docker bridge network).
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
EXPECTED: dict[tuple[str, str], Expect] = {
    **{("process-crash", c): _TCP_DEATH for c in STREAM},
    ("process-crash", "udp"): Expect(
        "silent",
        True,
        False,
        "the ICMP port unreachable is ignored by an unconnected socket; "
        "the datagram is lost; after restart the same socket works",
    ),
    ("process-crash", "udp-connected"): Expect(
        "refused",
        True,
        False,
        "ICMP port unreachable comes back and a connected socket "
        "reports it as ECONNREFUSED; after restart the same socket works",
    ),
    **{("graceful-stop", c): _TCP_DEATH for c in STREAM},
    ("graceful-stop", "udp"): Expect("silent", True, False, "as for a crash: no socket, no reply"),
    ("graceful-stop", "udp-connected"): Expect(
        "refused", True, False, "as for a crash: ICMP port unreachable"
    ),
    **{
        ("host-crash", c): Expect(
            "eof-then-silent",
            False,
            False,
            "the dying process's FIN still gets out (EOF), but then the address is gone: sends "
            "succeed into the void, no RST, no error; after the host returns, its new kernel "
            "knows no such connection and resets it",
        )
        for c in STREAM
    },
    ("host-crash", "udp"): Expect("silent", True, False, "no host, no ICMP: only silence"),
    ("host-crash", "udp-connected"): Expect(
        "silent",
        True,
        False,
        "no host, so no ICMP either: even a connected socket hears "
        "nothing; the same socket works once the host is back",
    ),
    **{("freeze", c): _SILENT_TCP for c in STREAM},
    ("freeze", "udp"): Expect(
        "silent",
        True,
        True,
        "the datagram waits in the frozen process's socket buffer and is answered after resume",
    ),
    ("freeze", "udp-connected"): Expect(
        "silent", True, True, "the socket still exists, so no ICMP: a late answer"
    ),
    **{
        ("partition", c): Expect(
            "silent",
            True,
            True,
            "TCP retransmits into the cut; after the cable is back the "
            "retransmission gets through and the same connection carries on",
        )
        for c in STREAM
    },
    ("partition", "udp"): Expect(
        "silent", True, False, "the datagram is lost in the cut; UDP never resends it"
    ),
    ("partition", "udp-connected"): Expect(
        "silent", True, False, "lost in the cut, and no ICMP either"
    ),
    **{("restart", c): _TCP_DEATH for c in STREAM},
    ("restart", "udp"): Expect(
        "answered",
        True,
        None,
        "a new process on the same port answers the same socket: "
        'UDP keeps no connection to lose ("udp works tho")',
    ),
    ("restart", "udp-connected"): Expect(
        "answered", True, None, "the same: the restarted server answers at once"
    ),
}


# Which default row a scheduled fault behaves like, by its kind and what it targets.
LIKE = {
    ("kill", False): "process-crash",
    ("kill", True): "host-crash",
    ("stop", False): "graceful-stop",
    ("pause", False): "freeze",
    ("cut", True): "partition",
    ("restart", False): "restart",
}
HOST_OF_SERVER = {
    "tcp-shout": "shouthost",
    "udp-shout": "shouthost",
    "http": "apphost",
    "db": "apphost",
}


def expectation(row: Row, client: str) -> Expect | None:
    """What a client should see in a row; None when the row does not touch its server."""
    server = SERVER[client]
    hits_host = HOST_OF_SERVER[server] in row.targets
    if server not in row.targets and not hits_host:
        return None
    like = LIKE.get((row.fault, hits_host))
    return EXPECTED.get((like, client)) if like else None


# --- one client's conversation, as session steps ----------------------------------------


@dataclass
class Client:
    name: str
    sock: str
    sent: list[str] = field(default_factory=list)  # tags of messages sent, in order
    address: str = ""  # udp: the server's IP, looked up once (a dead host has no DNS name)

    def message(self, tag: str) -> dict[str, Any]:
        """The payload of one message, tagged so its answer can be recognised."""
        self.sent.append(tag)
        if self.name == "http":
            return {"data": http_request("GET", f"/healthz?{tag}", "http", close=False)}
        if self.name == "resp":
            return {"hex": encode_command("ECHO", tag).hex()}
        return {"data": tag}


def answered_tags(client: Client, received: bytes, waiting: list[str]) -> list[str]:
    """Which of the messages ``waiting`` for an answer the received bytes answer."""
    if client.name == "http":
        return waiting[: received.count(b"HTTP/1.1 200 ")]  # answers come strictly in order
    if client.name == "resp":
        return [t for t in waiting if f"${len(t)}\r\n{t}\r\n".encode() in received]
    return [t for t in waiting if t.upper().encode() in received]


def connect_steps(client: Client, timeout: float) -> list[dict[str, Any]]:
    sock = client.sock
    host, port = {
        "tcp": ("tcp-shout", 8080),
        "udp": ("udp-shout", 8080),
        "udp-connected": ("udp-shout", 8080),
        "http": ("http", 80),
        "resp": ("db", 6379),
    }[client.name]
    kind = "udp" if client.name.startswith("udp") else "tcp"
    steps: list[dict[str, Any]] = [{"op": "socket", "sock": sock, "type": kind, "timeout": timeout}]
    if client.name != "udp":
        steps.append({"op": "connect", "sock": sock, "host": host, "port": port})
    return steps


def send_step(client: Client, tag: str) -> dict[str, Any]:
    if client.name == "udp":
        return {
            "op": "sendto",
            "sock": client.sock,
            "host": client.address,
            "port": 8080,
            **client.message(tag),
        }
    return {"op": "send", "sock": client.sock, **client.message(tag)}


def recv_step(client: Client) -> dict[str, Any]:
    return {"op": "recvfrom" if client.name == "udp" else "recv", "sock": client.sock}


# --- verdicts from observations -------------------------------------------------------------


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


class ScheduleError(LabError):
    exit_code = 2


def load_schedule(path: Path) -> tuple[list[Row], int]:
    """Rows from a YAML fault schedule, and its seed.

    seed: 7
    rows:
      - name: crash-one
        fault: kill                  # a lab.chaos.faults kind
        targets: [tcp-shout]         # or "random-process" / "random-host"
        at: 0.5                      # seconds after the clients connected
    """
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleError(f"cannot read schedule {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise ScheduleError(f"{path}: expected a mapping with a list of rows")
    seed = int(document.get("seed", 0))
    rng = random.Random(seed)
    rows = []
    for i, item in enumerate(document["rows"]):
        try:
            targets = item["targets"]
            if targets == "random-process":
                targets = [rng.choice(PROCESSES)]
            elif targets == "random-host":
                targets = [rng.choice(HOSTS)]
            rows.append(
                Row(
                    str(item.get("name", f"row-{i + 1}")),
                    str(item.get("title", "")),
                    str(item["fault"]),
                    tuple(targets),
                    float(item.get("at", 0.0)),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScheduleError(f"{path}: row {i + 1} is incomplete ({exc})") from None
    return rows, seed


# --- the experiment --------------------------------------------------------------------


class Failures(Experiment):
    name = "failures"
    question = (
        "What does each client see when a process dies, a host vanishes, a process "
        "freezes, the network is cut, or the server restarts?"
    )

    def __init__(self, rows: tuple[Row, ...] = DEFAULT_ROWS, seed: int = 0) -> None:
        self.rows = rows
        self.seed = seed
        self.claims = tuple(
            Claim(
                f"{row.name}.{client}",
                f"{row.title} / {client}: {EXPECTED[(row.name, client)].why}",
            )
            for row in rows
            for client in CLIENTS
            if (row.name, client) in EXPECTED
        )
        self.on_cell: Callable[[Cell], None] = lambda cell: None

    def run(self, ctx: Context) -> dict[str, tuple[bool, str]]:
        findings: dict[str, tuple[bool, str]] = {}
        cells: list[Cell] = []
        for row in self.rows:
            for cell in self.run_row(ctx, row):
                cells.append(cell)
                self.on_cell(cell)
                expect = expectation(row, cell.client)
                if expect is not None:
                    findings[f"{row.name}.{cell.client}"] = (judge(cell, expect), cell.summary())
        ctx.facts["seed"] = self.seed
        ctx.facts["rows"] = [asdict(r) for r in self.rows]
        ctx.facts["cells"] = [asdict(c) for c in cells]
        return findings

    def run_row(self, ctx: Context, row: Row) -> list[Cell]:
        lab = ctx.lab
        t0 = ctx.clock()
        shout_ip = lab.topology.host_of("udp-shout").ip
        clients = [Client(name, name.replace("-", "_"), address=shout_ip) for name in CLIENTS]
        client_host = lab.container(lab.topology.client.name)
        with ScriptSession(lab.client, client_host, t0) as session:

            def step(**s: Any) -> list[Event]:
                events = session.step(**s)
                ctx.events.extend(events)
                return events

            # 1. connect, and one exchange each so every connection is known to work
            before: dict[str, list[Event]] = {}
            for c in clients:
                before[c.name] = [e for s in connect_steps(c, PROBE_TIMEOUT) for e in step(**s)]
                before[c.name] += step(**send_step(c, f"{c.sock}-before"))
                before[c.name] += step(**recv_step(c))
            ctx.wait(row.at)
            # 2. the fault, undone however this block ends
            with injected(lab) as chaos:
                for target in row.targets:
                    chaos.apply(row.fault, target)
                fault_at = ctx.clock() - t0
                if row.settle:
                    lab.wait_healthy(silent)
                during: dict[str, list[Event]] = {}
                for c in clients:
                    probe: list[Event] = []
                    if c.name in STREAM:
                        probe += step(**recv_step(c))
                        probe += step(**send_step(c, f"{c.sock}-during1"))
                        probe += step(**send_step(c, f"{c.sock}-during2"))
                        probe += step(**recv_step(c))
                    else:
                        probe += step(**send_step(c, f"{c.sock}-during1"))
                        probe += step(**recv_step(c))
                    during[c.name] = probe
            recovered_at = ctx.clock() - t0
            # 3. after recovery: the same socket, then a new one
            cells = []
            for c in clients:
                after: list[Event] = []
                step(op="timeout", sock=c.sock, seconds=AFTER_TIMEOUT)
                after += step(**send_step(c, f"{c.sock}-after"))
                while True:
                    got = step(**recv_step(c))
                    after += got
                    if got[-1].outcome != "ok":
                        break
                    step(op="timeout", sock=c.sock, seconds=PROBE_TIMEOUT)
                fresh = Client(c.name, c.sock + "_new", address=shout_ip)
                new_events = [e for s in connect_steps(fresh, AFTER_TIMEOUT) for e in step(**s)]
                new_events += step(**send_step(fresh, f"{fresh.sock}-check"))
                new_events += step(**recv_step(fresh))
                cells.append(
                    self._cell(
                        row,
                        c,
                        fresh,
                        before[c.name],
                        during[c.name],
                        after,
                        new_events,
                        fault_at,
                        recovered_at,
                    )
                )
        for cell in cells:
            cell.t0 = t0
        return cells

    @staticmethod
    def _cell(
        row: Row,
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
        # When the client found out: the end of its first call that reported the fault.
        # Clients are probed one after another, so a later one also looks later.
        noticed = round(max(0.0, errors[0].t + errors[0].dt - fault_at), 3) if errors else None
        new_reply = b"".join(
            raw(e.data or "") for e in new_events if e.op.startswith("recv") and e.outcome == "ok"
        )
        return Cell(
            row=row.name,
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
