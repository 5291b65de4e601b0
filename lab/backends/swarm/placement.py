"""Which machine each host runs on, and what each machine's Compose file holds. Pure.

A *machine* is a Docker Engine the user already reaches: a Docker context, or an
engine URL (``unix://``, ``tcp://`` with TLS from the environment, ``ssh://``). A
host goes where its ``socklab.machine`` label says, or, without one, to the next
machine in turn (spread); a process always goes with its host, since it joins the
host's namespaces (``container:``), and a namespace cannot span two kernels.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lab.errors import TopologyError, UsageError
from lab.names import label
from lab.topology import Topology

SCHEMES = ("unix://", "tcp://", "ssh://", "npipe://")
MACHINE_LABEL = label("machine")  # also put on every container, so status can show it
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Machine:
    """A Docker Engine the lab runs hosts on."""

    name: str
    url: str  # where its engine answers: unix://, tcp:// or ssh://

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


def parse_machines(spec: str, context_url: Callable[[str], str]) -> list[Machine]:
    """``m1=ssh://root@a,m2=tcp://b:2376`` or Docker context names (``a,b``), or a mix.

    ``context_url`` turns a context name into its engine URL (``docker context
    inspect``), raising UsageError for an unknown one.
    """
    machines: list[Machine] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep:
            name, url = item, context_url(item)
        if not _NAME.match(name):
            raise UsageError(f"machine name {name!r}: letters, digits, '.', '_' and '-' only")
        if not url.startswith(SCHEMES):
            raise UsageError(
                f"machine {name}: {url!r} is no engine URL",
                "use unix://, tcp:// or ssh://, or the name of a Docker context",
            )
        machines.append(Machine(name, url))
    if not machines:
        raise UsageError("no machines given", "as in --cluster m1=ssh://a,m2=ssh://b")
    names = [m.name for m in machines]
    if len(set(names)) < len(names):
        raise UsageError(f"a machine is named twice in {spec!r}")
    return machines


def place(topology: Topology, machines: list[str]) -> dict[str, str]:
    """Every service (host or process) -> the machine it runs on.

    Labelled hosts go where they say; the others are spread in file order over
    the machines, starting after the last labelled one's, so that three unlabelled
    hosts on three machines land on three different machines.
    """
    if not machines:
        raise UsageError("a lab across machines needs at least one machine")
    where: dict[str, str] = {}
    for host in topology.hosts.values():
        if host.machine and host.machine not in machines:
            raise TopologyError(
                f"host {host.name} has {MACHINE_LABEL} {host.machine!r}: no such machine here",
                f"machines: {', '.join(machines)}",
            )
        if host.machine:
            where[host.name] = host.machine
    used = {m: sum(1 for w in where.values() if w == m) for m in machines}
    for host in topology.hosts.values():
        if host.name not in where:
            # The least loaded machine, earliest first: spread, and stable for a given file.
            chosen = min(machines, key=lambda m: (used[m], machines.index(m)))
            where[host.name] = chosen
            used[chosen] += 1
    for process in topology.processes.values():
        where[process.name] = where[process.host]
    return where


def on_machine(placement: Mapping[str, str], machine: str) -> list[str]:
    return [service for service, m in placement.items() if m == machine]


def crossing_probes(
    names: Mapping[str, Mapping[str, Sequence[str]]],
    placement: Mapping[str, str],
    machine: str,
    apart: Collection[frozenset[str]] = (),
) -> dict[str, list[str]]:
    """Which host asks for which names, so that every path between ``machine`` and the
    other machines is tried: each host elsewhere asks for every name on ``machine``, and
    each host on ``machine`` for every name elsewhere, on the networks the two share.

    ``names``: each live host's DNS names, by network. ``apart``: pairs of machines
    still cut from each other by a fault, whose hosts are not asked about each other.
    Forwarding across an overlay is per machine and per network (its FDB and ARP
    entries), and swarm can drop one machine pair's entries while keeping another's,
    so no other pair is left out. Pure.
    """
    plan: dict[str, list[str]] = {}
    for asker, mine in names.items():
        here = placement[asker] == machine
        wanted = [
            name
            for target, theirs in names.items()
            if (placement[target] == machine) != here
            and frozenset((placement[asker], placement[target])) not in apart
            for network, listed in theirs.items()
            if network in mine
            for name in listed
        ]
        if wanted:
            plan[asker] = list(dict.fromkeys(wanted))
    return plan


def machine_config(
    config: Mapping[str, Any], topology: Topology, placement: Mapping[str, str], machine: str
) -> dict[str, Any]:
    """One machine's share of the resolved Compose model, to run there as it is.

    Only its services; no ``build`` (the image is copied in, not built there); every
    lab network ``external`` (the attachable overlay the lab created on the swarm
    manager, by the name Docker knows it); ``depends_on`` kept within the machine
    (a host and its processes are always together); each container labelled with
    its machine.
    """
    mine = set(on_machine(placement, machine))
    document = copy.deepcopy(dict(config))
    services: dict[str, Any] = {}
    for name, spec in (document.get("services") or {}).items():
        if name not in mine:
            continue
        spec.pop("build", None)
        depends = spec.get("depends_on")
        if isinstance(depends, Mapping):
            spec["depends_on"] = {k: v for k, v in depends.items() if k in mine}
            if not spec["depends_on"]:
                del spec["depends_on"]
        spec["labels"] = {**(spec.get("labels") or {}), MACHINE_LABEL: machine}
        services[name] = spec
    document["services"] = services
    document["networks"] = {
        key: {"name": network.docker_name, "external": True}
        for key, network in topology.networks.items()
    }
    used_volumes = {
        str(v.get("source"))
        for spec in services.values()
        for v in spec.get("volumes") or ()
        if isinstance(v, Mapping) and v.get("type") == "volume"
    }
    volumes = document.get("volumes") or {}
    document["volumes"] = {k: v for k, v in volumes.items() if k in used_volumes}
    if not document["volumes"]:
        del document["volumes"]
    return document
