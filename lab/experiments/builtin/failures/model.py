"""The failure matrix's shape: its rows (faults), its columns (clients), and a cell
(what one client saw across one fault), as plain data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from lab.services.probes.sockscript import Event
from lab.topology import Topology

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
        # Processes before hosts: a host's fault takes its processes with it, and a
        # process already gone cannot be killed again (the engine refuses).
        named = list(dict.fromkeys(targets))
        on_host = set(topology.hosts) if topology is not None else set(hosts)
        ordered = [t for t in named if t not in on_host] + [t for t in named if t in on_host]
        resolved.append(replace(row, targets=tuple(ordered)))
    return tuple(resolved)


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
