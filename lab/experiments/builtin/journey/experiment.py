"""journey: one request followed from a name to a process, step by step."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.engine import helpers
from lab.errors import LabError, UsageError
from lab.experiments.builtin.journey import judgement, wire
from lab.experiments.model import Claim, Context, Experiment, Needs, Observations, Verdicts
from lab.packets import capture, dissect
from lab.traffic import clients

if TYPE_CHECKING:
    from lab.backends.engine import Engine
    from lab.topology.model import Topology

WORDS = {"http": ["/"], "resp": ["PING"]}  # what to say, by protocol; else one line


@dataclass(frozen=True)
class Target:
    process: str
    host: str
    port: int
    protocol: str
    address: str  # the host's address on a network the client reaches


def target_of(topology: Topology) -> Target:
    """The process a request is followed to: one speaking HTTP if there is one, else the
    first listening on TCP, on a host other than the client."""
    client = topology.client
    found = [
        (process, port)
        for process in topology.processes.values()
        if process.host != client.name
        for port in process.ports
        if port.transport == "tcp"
    ]
    if not found:
        raise UsageError(
            "the journey needs a process listening on TCP on a host other than the client"
        )
    process, port = next(((p, q) for p, q in found if q.protocol == "http"), found[0])
    host = topology.hosts[process.host]
    shared = [i.ip for i in host.interfaces if i.network in client.networks]
    return Target(process.name, host.name, port.number, port.protocol, (shared or [host.ip])[0])


class Journey(Experiment):
    name = "journey"
    question = "How does one request get from a name to a process, layer by layer?"
    needs = Needs(one_machine=True)
    timeline = True
    claims = (
        Claim(
            "name",
            "The client turns the name into an address: from /etc/hosts when it lists the "
            "name, else by asking Docker's resolver in its own namespace (127.0.0.11), whose "
            "answer carries the host's address; the connect goes to that address",
        ),
        Claim(
            "arp",
            "Its neighbour entry for the next hop flushed, the client asks every host of its "
            "network who has the next hop's address (ARP, broadcast); the next hop answers "
            "with its MAC, and the SYN is sent to that MAC",
        ),
        Claim(
            "handshake",
            "The TCP handshake: SYN, SYN-ACK, ACK, each acknowledging the other's sequence "
            "number plus one, before any byte of the request",
        ),
        Claim(
            "request",
            "The request crosses as the payload of TCP segments: the bytes on the target's "
            "network are the bytes the client sent, and the process reads them",
        ),
        Claim(
            "process",
            "The target's kernel hands the connection to the process that owns the port in "
            "its port table: that process's accept() returns the client's address and port",
        ),
        Claim(
            "answer",
            "The answer comes back the same way: the bytes from the port to the client on "
            "the wire are the bytes the client receives",
        ),
        Claim(
            "hops",
            "Each router on the way takes one off the TTL and puts new MACs on the frame, "
            "while the IP addresses stay as they were (with no router, the frame arrives "
            "between the two hosts' own MACs with the TTL it left with)",
        ),
    )

    def claims_for(self, topology: Topology) -> tuple[Claim, ...]:
        try:
            t = target_of(topology)
        except UsageError:
            return self.claims
        where = f"{t.host}:{t.port} ({t.process})"
        return tuple(replace(c, text=f"[{where}] {c.text}") for c in self.claims)

    def run(self, ctx: Context) -> None:
        lab, backend = ctx.lab, ctx.lab.backend
        topology = lab.topology
        t = target_of(topology)
        client = topology.client.name
        facts = ctx.facts
        facts["stepped"] = True  # the web view opens it a step at a time
        facts["target"] = {**asdict(t), "name": t.host}
        facts["hosts_file"] = backend.run_in(client, ["cat", "/etc/hosts"]).decode()
        facts["nsswitch"] = judgement.hosts_line(_read(backend, client, "/etc/nsswitch.conf"))
        if not judgement.listed(facts["hosts_file"], t.host) and t.address not in [
            i.ip for i in topology.hosts[t.host].interfaces if i.network in topology.client.networks
        ]:
            raise UsageError(
                f"the client cannot resolve {t.host} inside the lab: it shares no network with "
                "it (Docker's resolver would ask outside) and /etc/hosts does not list it",
                f'give the client `extra_hosts: ["{t.host}:{t.address}"]` (docs/journey.md)',
            )
        facts["ttl"] = int(_read(backend, client, "/proc/sys/net/ipv4/ip_default_ttl") or 0)
        # The interfaces of the hosts on the way: the client, the target, and every host
        # that can forward (on more than one network); a host that cannot say is left out.
        on_the_way = [
            h.name
            for h in topology.hosts.values()
            if h.name in (client, t.host) or len(h.networks) > 1
        ]
        facts["links"] = {h: _links(backend, h) for h in on_the_way}
        facts["subnets"] = {n: net.subnet for n, net in topology.networks.items()}
        facts["port_tables"] = {t.host: [asdict(r) for r in lab.host(t.host).port_table()]}
        ours = {i.ip for i in topology.hosts[t.host].interfaces}
        loopback = helpers.Namespace.of_host(backend, client)
        places = {f"lo of {client}": capture.Place(loopback, "lo", [client], "")}
        places |= {n: capture.place(backend, n) for n in topology.networks}
        facts["captures"] = list(places)
        words = WORDS.get(t.protocol, ["journey"])
        with (
            tempfile.TemporaryDirectory(prefix="socklab-journey-") as folder,
            lab.tracing(t.process, ctx.t0) as trace,
        ):
            with capture.taking(backend, places, Path(folder), "journey") as files:
                offset = time.time() - time.monotonic()
                resolved = ctx.on(client, [{"op": "resolve", "sock": "c", "host": t.host}])
                address = resolved[0].data if resolved and resolved[0].outcome == "ok" else ""
                if address not in ours:  # never sent anywhere but the target host itself
                    raise UsageError(
                        f"the client resolved {t.host} to {address or 'nothing'}, which is not "
                        f"an address of host {t.host} ({', '.join(sorted(ours))})",
                        "the journey goes only to the lab's own hosts: mend the client's "
                        "/etc/hosts (extra_hosts)",
                    )
                route = backend.run_in(client, ["ip", "-o", "route", "get", address]).decode()
                facts["route"] = route
                hop = wire.next_hop(route, address)
                helpers.run(
                    backend,
                    "neighbours",
                    loopback,
                    ["ip", "neigh", "flush", "to", hop],
                    "NET_ADMIN",
                )
                after = backend.run_in(client, ["ip", "neigh", "show", "to", hop]).decode()
                facts["flushed"] = {
                    "next_hop": hop,
                    "after": after.strip(),
                    "t": ctx.clock() - ctx.t0,
                }
                steps = clients.conversation(t.protocol, "tcp", t.host, t.port, words)
                for step in steps:  # the name stays in the request (HTTP's Host), and
                    if step["op"] == "connect":  # the address found is connected to
                        step["host"] = address
                ctx.on(client, steps)
            frames = []
            for label, path in files.items():
                frames += [(label, f) for f in dissect.read(path)] if path.exists() else []
        frames.sort(key=lambda x: x[1].time)
        facts["frames"] = [
            {"capture": label, "t": f.time - offset - ctx.t0, "hex": f.raw.hex()}
            for label, f in frames
        ]
        facts["server"] = {"pid": trace.pid, "calls": [asdict(c) for c in trace.calls]}

    def judge(self, seen: Observations) -> Verdicts:
        return judgement.judge(seen)


def _read(backend: Engine, host: str, path: str) -> str:
    """A file of a host ('' when it has none: another image may lack it)."""
    try:
        return backend.run_in(host, ["cat", path]).decode(errors="replace")
    except LabError:
        return ""


def _links(backend: Engine, host: str) -> list[dict[str, Any]]:
    """A host's interfaces as its own kernel lists them (`ip -j addr`); [] when it cannot."""
    try:
        found = json.loads(backend.run_in(host, ["ip", "-j", "addr"]))
    except (LabError, ValueError):
        return []
    return found if isinstance(found, list) else []
