"""Machine faults: what only a lab across machines can do to itself.

``isolate`` and ``sever`` drop the overlay's data path (VXLAN) at a machine's own
firewall, in a chain of the lab's; ``rejoin`` and ``mend`` take the rules out and wait
until the overlay carries the machine's traffic again. A backend offers this as its
``machine_faults`` (None on one engine): see lab/backends/base.py.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING

import docker.errors

from lab.backends.model import dns_names, unlike_promised
from lab.backends.swarm.placement import crossing_probes, on_machine
from lab.errors import LabError, NotRunning, TimedOut, UsageError
from lab.packets.dissect import VXLAN_PORT
from lab.progress import Progress, silent
from lab.waiting import wait_until

if TYPE_CHECKING:
    from lab.backends.swarm.swarm import Swarm

FAULT_CHAIN = "SOCKLAB-FAULT"  # a machine's fault rules, in a chain of their own
OVERLAY_BACK_TIMEOUT = 90.0  # swarm's own re-join of a node it declared dead, and more
# Run in a lab host (python3 only): prints each name given that does not resolve, and
# each address whose host does not answer across the overlay, both ways: a datagram to
# a closed port comes back as an ICMP port unreachable (ECONNREFUSED on a connected
# socket), and an answer (something listens on 9) proves the path as well; silence is
# no path yet. Each address once: the kernel rate-limits ICMP to one destination.
REACHES = """
import socket, sys
where = {}
for name in sys.argv[1:]:
    try:
        where.setdefault(socket.gethostbyname(name), []).append(name)
    except OSError:
        print(name, "does not resolve")
for address, names in where.items():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    s.connect((address, 9))
    s.send(b"?")
    try:
        s.recv(1)
    except ConnectionRefusedError:
        pass
    except OSError:
        print("/".join(names), "does not answer")
"""


def dropped(rules: str, by_address: dict[str, str], holder: str) -> set[str]:
    """The machines that ``holder``'s fault chain (its ``iptables -S`` lines) cuts it off
    from: a DROP rule naming a machine's address cuts that one, a rule naming none
    cuts every other. Pure."""
    found = set()
    for line in rules.splitlines():
        if not (line.startswith(f"-A {FAULT_CHAIN} ") and line.endswith("-j DROP")):
            continue
        match = re.search(r" -[sd] (\d+\.\d+\.\d+\.\d+)(?:/32)? ", line)
        if match is None:
            found |= {m for m in by_address.values() if m != holder}
        elif match[1] in by_address:
            found.add(by_address[match[1]])
    return found


def _chain_setup() -> list[str]:
    """The fault chain, made once and jumped to first from INPUT and OUTPUT (the engine's
    own rules stay as they are)."""
    return [
        f"iptables -w -N {FAULT_CHAIN} 2>/dev/null || true",
        f"iptables -w -C INPUT -j {FAULT_CHAIN} 2>/dev/null"
        f" || iptables -w -I INPUT -j {FAULT_CHAIN}",
        f"iptables -w -C OUTPUT -j {FAULT_CHAIN} 2>/dev/null"
        f" || iptables -w -I OUTPUT -j {FAULT_CHAIN}",
    ]


class SwarmFaults:
    """The machine faults of one Swarm, and what this process knows of the rules."""

    def __init__(self, swarm: Swarm) -> None:
        self.swarm = swarm
        self._faulted: set[str] = set()  # machines this process put fault rules on
        # (machine holding a DROP rule, machine it drops): read once, then kept here
        self._drops: set[tuple[str, str]] | None = None
        self._data_port: int | None = None
        self._addresses: dict[str, str] = {}  # each machine's swarm address
        self._swept = False  # whether every machine was checked for fault rules yet

    def address_of(self, machine: str) -> str:
        """The address a machine's engine advertises to the swarm: where its VXLAN goes
        (asked once: every fault and every check needs the addresses of all machines)."""
        if machine not in self._addresses:
            swarm = self.swarm.engine(machine).info()["Swarm"]
            self._addresses[machine] = str(swarm.get("NodeAddr") or "")
        return self._addresses[machine]

    def apply(self, action: str, machine: str, peer: str = "", progress: Progress = silent) -> None:
        """``isolate``: the lab's traffic between ``machine`` and every other machine
        dropped, both ways: to the lab's other hosts it is lost, while its engine and
        containers live on. ``sever``: only that between ``machine`` and ``peer``.
        ``rejoin`` and ``mend`` undo them.

        The lab's traffic is the overlay's data path, VXLAN (UDP to the swarm's data path
        port, 4789 unless set otherwise): every frame between two lab hosts on different
        machines. The engines' own traffic (swarm's control port and its gossip) is left
        alone, as on machines whose management network is not their data network. Cut
        too, it gets a machine declared dead within seconds (on a loaded machine even a
        3 s cut was, after the cut had ended), and the overlay then took from 10 s to
        more than a minute to carry every pair's traffic again (docs/scale-out.md).

        Done with iptables in the machine's own network namespace, from a helper that
        the machine's engine runs there with CAP_NET_ADMIN only (``network_mode: host``):
        nothing but the engine is needed, on a test machine as on a real one.
        """
        if action in ("sever", "mend") and (not peer or peer == machine):
            raise UsageError(f"{action}: {machine} and the client's machine are the same one")
        adding = action in ("isolate", "sever")
        chain = FAULT_CHAIN
        vxlan = f"-p udp --dport {self.data_path_port()} -j DROP"
        # isolate: every VXLAN datagram in or out, whichever address the swarm sends its
        # data path from; sever: only those to and from the peer's swarm address.
        specs = (
            [vxlan]
            if action in ("isolate", "rejoin")
            else [f"{way} {self.address_of(peer)} {vxlan}" for way in ("-s", "-d")]
        )
        rules = [
            # -C first: a machine struck twice (two servers on it) holds each rule once
            f"iptables -w -C {chain} {spec} 2>/dev/null || iptables -w -A {chain} {spec}"
            if adding
            else f"iptables -w -D {chain} {spec} 2>/dev/null || true"
            for spec in specs
        ]
        listing = f"iptables -w -S {FAULT_CHAIN} 2>/dev/null; true"
        script = "; ".join([*(_chain_setup() if adding else []), *rules, listing])
        self.drops()  # what every machine holds, known before this one's changes
        self._holds(machine, self._iptables(machine, script))
        if adding:
            self._faulted.add(machine)
        else:
            self.wait_overlay_whole(machine, progress)

    def data_path_port(self) -> int:
        """The UDP port the swarm's VXLAN goes to (``docker swarm init --data-path-port``)."""
        if self._data_port is None:
            attrs = self.swarm.manager().api.inspect_swarm()
            self._data_port = int(attrs.get("DataPathPort") or VXLAN_PORT)
        return self._data_port

    def drops(self) -> set[tuple[str, str]]:
        """The fault rules in force, whoever put them there, as (machine holding the rule,
        machine it drops): read from every machine that answers once per process, then
        from each machine whose rules ``apply`` changes."""
        if self._drops is None:
            self._drops = set()
            for machine in self.swarm.engines_answering()[0]:
                self._holds(machine, self._iptables(machine, f"iptables -w -S {FAULT_CHAIN}; true"))
        return self._drops

    def _holds(self, machine: str, listed: str) -> None:
        """``machine``'s fault chain, as ``iptables -S`` listed it, into ``drops``."""
        by_address = {self.address_of(m): m for m in self.swarm.machines}
        kept = {rule for rule in self._drops or set() if rule[0] != machine}
        self._drops = kept | {(machine, m) for m in dropped(listed, by_address, machine)}

    def wait_overlay_whole(self, machine: str, progress: Progress = silent) -> None:
        """Until the overlay carries ``machine``'s traffic again: every other machine lists
        it among the overlay's peers, and every pair of hosts across it find each other
        by name and answer each other (``paths_missing``). After a cut of the data path
        only, that holds at once. It is there for a machine the swarm declared dead (its
        engines' own traffic lost as well, by a real fault): the others then forget its
        containers' addresses and names, and take them back only after a while
        (measured here: peers after 10 s, names after 16 s, the path up to more than a
        minute), and not for every pair of machines at once (the client reached
        shouthost again while apphost and shouthost could not yet reach each other)."""
        address = self.address_of(machine)
        apart = {frozenset(rule) for rule in self.drops()}  # another fault still cuts these
        others = [
            m
            for m in self.swarm.machines
            if m != machine
            and on_machine(self.swarm.placement, m)
            and frozenset((machine, m)) not in apart
        ]

        missing: list[str] = []
        told: list[str] = []

        def whole() -> bool:
            missing[:] = []
            for other in others:
                for network in self.swarm.topology.networks.values():
                    try:
                        peers = (
                            self.swarm.engine(other)
                            .api.inspect_network(network.docker_name, verbose=True)
                            .get("Peers")
                            or []
                        )
                    except docker.errors.NotFound:
                        continue
                    if address not in {p.get("IP") for p in peers}:
                        missing.append(f"{other} lists no peer {machine} on {network.name}")
            if not missing:
                missing.extend(self.paths_missing(machine, apart))
            if missing and missing != told:
                told[:] = missing
                progress(f"the overlay has not taken {machine} back yet: {'; '.join(missing)}")
            return not missing

        progress(f"checking that the overlay carries {machine}'s traffic: peers, names, paths")
        try:
            wait_until(whole, OVERLAY_BACK_TIMEOUT, f"the overlay to know {machine} again", poll=1)
        except TimedOut:
            raise LabError(
                f"{machine} is joined again, but the overlay has not taken it back within "
                f"{OVERLAY_BACK_TIMEOUT:.0f} s ({'; '.join(missing)})",
                "see `docker node ls` on the manager; `lab chaos rejoin HOST` (or `mend "
                "HOST`) on a host of that machine checks again",
            ) from None

    def paths_missing(self, machine: str, apart: Collection[frozenset[str]] = ()) -> list[str]:
        """Which running lab hosts, one on ``machine`` and one elsewhere, do not yet find
        each other by name or reach each other across the overlay, at each of their
        addresses on the networks they share ([]: none). A host that is down or off its
        networks, or on a machine ``apart`` from the other's (faults that are undone
        next), is left out."""
        states = self.swarm.states()
        names = {
            h: {i.network: [*dns_names(host, i), i.ip] for i in host.interfaces}
            for h, host in self.swarm.topology.hosts.items()
            if (state := states.get(h)) is not None
            and state.status == "running"
            and not unlike_promised(host, state.attached)
        }
        missing = []
        for asker, wanted in crossing_probes(names, self.swarm.placement, machine, apart).items():
            try:
                code, out = self.swarm.container(asker).exec_run(
                    ["python3", "-c", REACHES, *wanted]
                )
            except (docker.errors.APIError, NotRunning) as exc:  # gone since it was listed
                missing.append(f"{asker} could not be asked ({exc})")
                continue
            text = out.decode(errors="replace") if isinstance(out, bytes) else ""
            lines = text.splitlines() or ([] if code == 0 else [f"the probe failed ({code})"])
            missing += [f"from {asker}: {line}" for line in lines]
        return missing

    def mend(self, progress: Progress = silent, wait: bool = True) -> list[str]:
        """Every machine fault undone: the fault chain emptied, and then removed with its
        jumps, so that a machine keeps nothing of the lab's in its firewall. ``wait``:
        until the overlay carries each mended machine's traffic (not before removing
        the lab anyway)."""
        machines = list(self.swarm.machines) if not self._swept else sorted(self._faulted)
        up = set(self.swarm.engines_answering()[0])
        machines = [m for m in machines if m in up]
        mended = []
        for machine in machines:
            out = self._iptables(
                machine,
                f"n=$(iptables -w -S {FAULT_CHAIN} 2>/dev/null | grep -c DROP); "
                f"iptables -w -F {FAULT_CHAIN} 2>/dev/null; "
                f"iptables -w -D INPUT -j {FAULT_CHAIN} 2>/dev/null; "
                f"iptables -w -D OUTPUT -j {FAULT_CHAIN} 2>/dev/null; "
                f"iptables -w -X {FAULT_CHAIN} 2>/dev/null; echo $n",
            )
            if out.strip() not in ("", "0"):
                mended.append(machine)
        if self._drops is not None:  # what machines not answering hold is not known
            self._drops = {rule for rule in self._drops if rule[0] not in machines}
        for machine in mended if wait else []:
            self.wait_overlay_whole(machine, progress)
        self._faulted.clear()
        self._swept = True
        return mended

    def _iptables(self, machine: str, script: str) -> str:
        from lab.engine import helpers

        where = helpers.Namespace("host", machine)
        return helpers.run(self.swarm, "machine-fault", where, ["sh", "-c", script], "NET_ADMIN")
