"""Bystanders: probes between two hosts beside the clients, which a fault must not touch
(or must, when it cuts them off)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lab.experiments.builtin.failures.model import MACHINE_FAULTS, Row
from lab.experiments.model import (
    Claim,
    Context,
    Verdict,
)
from lab.services.probes.sockscript import Event
from lab.topology import Topology


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
    """Whether the probe's connect did what the fault predicts, from its recorded events.

    ``sever``: the connect succeeds. ``isolate``: it times out, and only that: a lost
    machine sends nothing back, while an error (ECONNREFUSED is an RST, EHOSTUNREACH an
    ICMP or a failed ARP) is an answer that crossed the cut, or came from this side of it."""
    connects = [e for e in events if e.op == "connect"]
    outcome = connects[0].outcome if connects else "no connect recorded"
    held = outcome == ("ok" if fault == "sever" else "timeout")
    return Verdict(held, f"connect {outcome}")


def run_probe(ctx: Context, probe: Bystander) -> dict[str, Any]:
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
