"""The lab across several machines: Docker Engines joined in one Docker Swarm.

Why not a swarm *stack* (``docker stack deploy``): it ignores ``network_mode`` and
``pid`` (moby#29940, moby#33055) and gives services no fixed IPs (moby#24170), so
the lab's model (hosts that own an address, processes that join their host's
namespaces) would not survive. What does: an **attachable overlay** network made on
the swarm manager, and plain containers on every machine attached to it with fixed
IPs, each process joined to its host with ``container:`` on the same machine. So
each machine runs its share of the resolved Compose model with Compose itself
(``DOCKER_HOST`` pointing at it), every lab network ``external`` there, and every
reading goes to the engine that holds the container (``client_for``).

The service image reaches each machine by ``docker save`` on the driver's engine and
``docker load`` on the machine, streamed over the engine API: no registry is reachable
here, and this needs no extra service, no port and no access beyond the engine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import tempfile
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
import docker.types
from docker.models.containers import Container

from lab import names
from lab.backends.engine import (
    HEALTH_TIMEOUT,
    PROJECT_LABEL,
    SERVICE_LABEL,
    Engine,
    HostStatus,
    Phases,
    Removed,
    dns_names,
    unlike_promised,
)
from lab.backends.swarm import machines as test_cluster
from lab.backends.swarm.placement import (
    Machine,
    crossing_probes,
    machine_config,
    on_machine,
    place,
)
from lab.engine import base_image, hardening
from lab.engine.compose import Compose
from lab.errors import DockerUnavailable, LabError, NotRunning, TimedOut, UsageError
from lab.names import PROJECT
from lab.packets.dissect import VXLAN_PORT
from lab.progress import Progress, silent
from lab.services.probes.sockscript import Event, Step
from lab.topology import Topology
from lab.waiting import wait_until

FAULT_CHAIN = "SOCKLAB-FAULT"  # a machine's fault rules, in a chain of their own
CLUSTER_LABEL = names.label("cluster")  # on the overlay networks the lab makes
ANCHOR_LABEL = names.label("anchor")  # a container that keeps an overlay present on a machine
VXLAN_OVERHEAD = 50  # outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8
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
NETWORK_GONE_TIMEOUT = 30.0  # an overlay is removable once every machine let go of it


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


def one_swarm(swarms: dict[str, dict[str, Any]], manager_nodes: set[str] | None) -> str:
    """Why these engines are not one swarm ("" when they are). Pure.

    ``swarms``: each machine's ``docker info`` Swarm section; ``manager_nodes``: the
    node ids the first manager lists (None when no machine is a manager).
    """
    inactive = [m for m, s in swarms.items() if s.get("LocalNodeState") != "active"]
    if inactive:
        return f"{', '.join(inactive)} {'is' if len(inactive) == 1 else 'are'} in no swarm"
    if manager_nodes is None:
        return "no machine is a swarm manager"
    outside = [m for m, s in swarms.items() if s.get("NodeID") not in manager_nodes]
    if outside:
        return f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} in another swarm"
    return ""


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


class Swarm(Engine):
    """A Engine whose hosts live on several engines; the driver's own engine builds."""

    def __init__(
        self,
        client: docker.DockerClient | None,
        topology: Topology,
        compose: Compose,
        project_dir: Path,
        machines: list[Machine],
        config: dict[str, Any],
    ) -> None:
        super().__init__(client, topology, compose, project_dir)
        self.machines = {m.name: m for m in machines}
        self.placement = place(topology, list(self.machines))
        # The topology knows where each host is: the failure matrix adds its machine rows.
        self.topology = replace(topology, machines={h: self.placement[h] for h in topology.hosts})
        self.config = config  # the resolved Compose model each machine gets its share of
        self._engines: dict[str, docker.DockerClient] = {}
        self._faulted: set[str] = set()  # machines this process put fault rules on
        # (machine holding a DROP rule, machine it drops): read once, then kept here
        self._drops: set[tuple[str, str]] | None = None
        self._data_port: int | None = None
        self._addresses: dict[str, str] = {}  # each machine's swarm address
        self._swept = False  # whether every machine was checked for fault rules yet
        self._manager: str | None = None

    # --- engines ------------------------------------------------------------------

    def engine(self, machine: str) -> docker.DockerClient:
        if machine not in self._engines:
            spec = self.machines[machine]
            try:
                client = test_cluster.connect(spec)
                client.ping()
            except (docker.errors.DockerException, OSError):
                raise DockerUnavailable(
                    f"the engine of machine {spec} does not answer",
                    "check it with `docker -H URL info`",
                ) from None
            self._engines[machine] = client
        return self._engines[machine]

    def engines_answering(self) -> tuple[list[str], list[str]]:
        """The machines whose engine answers, and those whose engine does not: cleaning up
        goes on where it can rather than stopping at the first machine lost."""
        up, lost = [], []
        for machine in self.machines:
            try:
                self.engine(machine)
            except LabError:
                lost.append(machine)
            else:
                up.append(machine)
        return up, lost

    def client_for(self, where: str) -> docker.DockerClient:
        if where in self.machines:  # a helper in a machine's own network namespace
            return self.engine(where)
        if where in self.placement:
            return self.engine(self.placement[where])
        return self.client  # the Docker host itself: the driver's engine

    def clients(self) -> list[docker.DockerClient]:
        # The driver's engine too: captures and Docker-host scripts run their helpers there.
        return [self.client, *(self.engine(m) for m in self.machines)]

    def machine_of(self, service: str) -> str:
        return self.placement.get(service, "")

    def manager(self) -> docker.DockerClient:
        """The engine of a swarm manager among the machines (found once, then kept)."""
        if self._manager is None:
            for machine in self.machines:
                if self.engine(machine).info()["Swarm"].get("ControlAvailable"):
                    self._manager = machine
                    break
            else:
                raise LabError(self.swarm_problem() or "no machine is a swarm manager")
        return self.engine(self._manager)

    def swarm_problem(self) -> str:
        swarms = {m: dict(self.engine(m).info()["Swarm"]) for m in self.machines}
        managers = [m for m, s in swarms.items() if s.get("ControlAvailable")]
        nodes = {str(n.id) for n in self.engine(managers[0]).nodes.list()} if managers else None
        return one_swarm(swarms, nodes)

    def check_swarm(self) -> None:
        problem = self.swarm_problem()
        if problem:
            first = next(iter(self.machines))
            raise LabError(
                f"the machines are not one swarm: {problem}",
                f"run `docker swarm init` on {first} and the `docker swarm join` it prints on "
                "each other machine (or `lab cluster make N` for a test cluster on this machine)",
            )

    # --- reading --------------------------------------------------------------------

    def _containers(self, service: str | None = None) -> list[Container]:
        labels = [f"{PROJECT_LABEL}={self.topology.project}"]
        if service is not None:
            labels.append(f"{SERVICE_LABEL}={service}")
        where = (
            [self.placement[service]]
            if service is not None and service in self.placement
            else list(self.machines)
        )
        found = []
        for machine in where:
            engine = self.engine(machine)
            for summary in engine.api.containers(all=True, filters={"label": labels}):
                with contextlib.suppress(docker.errors.NotFound):
                    found.append(engine.containers.get(summary["Id"]))
        return found

    def status(self) -> list[HostStatus]:
        return [
            HostStatus(
                e.host,
                e.state,
                e.processes,
                e.ports,
                e.published,
                e.differs,
                self.machine_of(e.host.name),
            )
            for e in super().status()
        ]

    def network(self, key: str | None = None) -> Any:
        name = self.topology.networks[key or self.topology.network].docker_name
        try:
            return self.manager().networks.get(name)
        except docker.errors.NotFound:
            raise NotRunning(f"network {name}") from None

    # --- changing --------------------------------------------------------------------

    def up(
        self,
        progress: Progress,
        timeout: float = HEALTH_TIMEOUT,
        then: Any = None,
        build: bool = True,
    ) -> base_image.Plan:
        """Swarm checked, image built here and copied to each machine, overlays made,
        each machine's share started, every service awaited; undone on failure."""
        clock = Phases()
        self.check_swarm()
        clock.done("swarm checked")
        already_there = bool(self.owned().containers)
        chosen = self.prepare(progress, build, clock)
        with self._undo_on_failure(unless=already_there):
            self.copy_images(progress)
            clock.done("images copied")
            self.make_networks(progress)
            self.anchor_networks(progress)
            clock.done("overlay networks")
            self.start(progress, timeout, then, clock)
        self.up_phases = clock.phases
        return chosen

    def images_for(self, machine: str) -> set[str]:
        services = self.config.get("services") or {}
        return {
            str(services[s]["image"])
            for s in on_machine(self.placement, machine)
            if services.get(s, {}).get("image")
        }

    def copy_images(self, progress: Progress) -> None:
        """``docker save`` here, ``docker load`` there, streamed; skipped where the
        machine holds the very same image already."""
        for machine in self.machines:
            engine = self.engine(machine)
            for name in sorted(self.images_for(machine)):
                local = self.client.images.get(name)
                with contextlib.suppress(docker.errors.ImageNotFound):
                    if engine.images.get(name).id == local.id:
                        continue
                progress(f"copying {name} to {machine} (docker save | docker load)")
                # The SDK streams an iterable body (chunked): no copy of the image in memory.
                engine.images.load(cast(Any, local.save(named=True)))

    def overlay_mtu(self) -> int | None:
        """VXLAN adds 50 bytes to every frame: the overlay's MTU must leave room for them
        on the underlay, or full-sized frames vanish between machines. Docker assumes a
        1500-byte underlay (1450); the test cluster's is read from a machine (this
        machine's Docker gives its networks 1400). None: Docker's default."""
        for machine in self.machines:
            with contextlib.suppress(docker.errors.DockerException):
                outer = self.client.containers.get(test_cluster.container_name(machine))
                code, out = outer.exec_run(["cat", "/sys/class/net/eth0/mtu"])
                text = out.decode().strip() if isinstance(out, bytes) else ""
                if code == 0 and text.isdigit():
                    return int(text) - VXLAN_OVERHEAD
        return None

    def make_networks(self, progress: Progress) -> None:
        manager = self.manager()
        mtu = self.overlay_mtu()
        for network in self.topology.networks.values():
            with contextlib.suppress(docker.errors.NotFound):
                manager.networks.get(network.docker_name)
                continue
            progress(f"creating the attachable overlay {network.docker_name} ({network.subnet})")
            manager.networks.create(
                network.docker_name,
                driver="overlay",
                attachable=True,
                ipam=docker.types.IPAMConfig(
                    pool_configs=[docker.types.IPAMPool(subnet=network.subnet)]
                ),
                labels={PROJECT_LABEL: self.topology.project, CLUSTER_LABEL: "1"},
                options={"com.docker.network.driver.mtu": str(mtu)} if mtu else None,
            )

    def anchor_networks(self, progress: Progress) -> None:
        """One small container on each lab network on each machine, for the lab's life.

        A swarm worker lists an overlay only while a container of its own is attached to
        it; Compose looks an external network up before it creates anything and stops
        at "network not found" (the engine itself would have attached the container).
        An anchor makes the overlay present on the machine before Compose runs, and keeps
        it there while a host is cut off and healed. Its address is taken from the top
        of the subnet, away from the hosts' fixed ones; it carries no Compose label (else
        Compose would remove it as an orphan).
        """
        image = self.client.images.get(next(iter(self.images_for(self._busiest())))).id
        taken = {i.ip for h in self.topology.hosts.values() for i in h.interfaces}
        for m, machine in enumerate(self.machines):
            if not on_machine(self.placement, machine):
                continue
            engine = self.engine(machine)
            for key, network in self.topology.networks.items():
                name = f"{self.topology.project}-anchor-{key}-{machine}"
                with contextlib.suppress(docker.errors.NotFound):
                    engine.containers.get(name)
                    continue
                free = [
                    str(ip)
                    for ip in reversed(list(ipaddress.ip_network(network.subnet).hosts()))
                    if str(ip) not in taken
                ]
                progress(f"anchoring {network.docker_name} on {machine}")
                api = engine.api
                created = api.create_container(
                    image,
                    ["sleep", "infinity"],
                    name=name,
                    user=hardening.COMPANION.user,
                    # Emptied: a container inherits its image's labels, and Compose labelled
                    # the image as apphost's; an anchor is no service, and no orphan.
                    labels={
                        ANCHOR_LABEL: self.topology.project,
                        PROJECT_LABEL: "",
                        SERVICE_LABEL: "",
                    },
                    host_config=api.create_host_config(
                        **hardening.COMPANION.host_config(),
                        network_mode=network.docker_name,
                    ),
                    # (the SDK's stubs say one EndpointConfig; the API takes a mapping of them)
                    networking_config=api.create_networking_config(
                        cast(
                            Any,
                            {network.docker_name: api.create_endpoint_config(ipv4_address=free[m])},
                        )
                    ),
                )
                api.start(created["Id"])

    def _busiest(self) -> str:
        return max(self.machines, key=lambda m: len(on_machine(self.placement, m)))

    def _remove_anchors(self, engine: docker.DockerClient) -> None:
        anchors = {"label": f"{ANCHOR_LABEL}={self.topology.project}"}
        for summary in engine.api.containers(all=True, filters=anchors):
            with contextlib.suppress(docker.errors.NotFound):
                engine.api.remove_container(summary["Id"], force=True)

    def machine_compose(self, machine: str, folder: Path) -> Compose:
        """Compose for one machine: its share of the model, run against its engine."""
        document = machine_config(self.config, self.topology, self.placement, machine)
        path = folder / f"{self.topology.project}-{machine}.json"
        path.write_text(json.dumps(document, indent=1))
        return Compose(
            self.project_dir,
            self.topology.project,
            (path,),
            {**self.compose.env, "DOCKER_HOST": self.machines[machine].url},
        )

    def start(
        self,
        progress: Progress,
        timeout: float,
        then: Any = None,
        clock: Phases | None = None,
    ) -> None:
        clock = clock or Phases()
        with tempfile.TemporaryDirectory(prefix=f"{PROJECT}-cluster-compose-") as tmp:
            for machine in self.machines:
                if not on_machine(self.placement, machine):
                    continue
                progress(f"starting {', '.join(on_machine(self.placement, machine))} on {machine}")
                self.machine_compose(machine, Path(tmp)).up()
        clock.done("containers started")
        self.wait_healthy(progress, timeout)
        clock.done("healthy")
        if then is not None:
            then()
        clock.done("routes and links")

    def check_ports_free(self) -> None:
        """Published ports are bound on each machine, not here: nothing to check here."""

    def owned(self) -> Removed:
        label = self._label
        containers, volumes, networks = [], [], []
        for machine in self.engines_answering()[0]:
            engine = self.engine(machine)
            containers += [f"{c.name} ({machine})" for c in self._containers_on(engine)]
            volumes += [f"{v.name} ({machine})" for v in engine.volumes.list(filters=label)]
        with contextlib.suppress(LabError):
            networks = [str(n.name) for n in self.manager().networks.list(filters=label)]
        return Removed(sorted(containers), sorted(networks), sorted(volumes))

    def _containers_on(self, engine: docker.DockerClient) -> list[Container]:
        summaries = engine.api.containers(all=True, filters=self._label)
        found = []
        for summary in summaries:
            with contextlib.suppress(docker.errors.NotFound):
                found.append(engine.containers.get(summary["Id"]))
        return found

    def down(self) -> Removed:
        found = self.owned()
        with contextlib.suppress(LabError):  # the lab's image may be gone already
            self.mend_machines(wait=False)
        self.sweep()
        from lab.chaos import powerloss

        powerloss.sweep(self.topology.project, test_cluster.SHARED)
        lost = self.engines_answering()[1]
        if lost:  # everything else is gone; say what could not be reached
            raise DockerUnavailable(
                f"the lab was removed from every machine but {', '.join(lost)}, whose engine "
                "does not answer",
                "start that engine and run `lab down` again",
            )
        return found

    def sweep(self) -> None:
        """Containers and volumes on every machine, then the overlays on the manager
        (each machine lets go of an overlay a moment after its last container went)."""
        label = self._label
        for machine in self.engines_answering()[0]:
            engine = self.engine(machine)
            for c in self._containers_on(engine):
                with contextlib.suppress(docker.errors.NotFound):
                    c.remove(force=True, v=True)
            for v in engine.volumes.list(filters=label):
                with contextlib.suppress(docker.errors.NotFound):
                    v.remove(force=True)
            self._remove_anchors(engine)
        # The helpers this lab ran on the driver's own engine (captures, Docker-host
        # scripts): by the project's label and the helper role, nothing else of it.
        outer = {
            "label": [f"{PROJECT_LABEL}={self.topology.project}", f"{names.label('role')}=helper"]
        }
        for summary in self.client.api.containers(all=True, filters=outer):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(summary["Id"], force=True)
        with contextlib.suppress(LabError):
            manager = self.manager()

            def all_gone() -> bool:
                left = manager.networks.list(filters=label)
                for n in left:
                    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                        n.remove()
                # Gone from the manager first, then from each machine's own list.
                return not any(e.networks.list(filters=label) for e in self.clients()[1:])

            try:
                wait_until(all_gone, NETWORK_GONE_TIMEOUT, "the overlay networks to go", poll=1)
            except TimedOut:
                raise LabError(
                    "an overlay network of the lab is still in use on some machine",
                    "run `lab down --cluster ...` again in a moment",
                ) from None

    # --- faults only a cluster has ------------------------------------------------------

    def address_of(self, machine: str) -> str:
        """The address a machine's engine advertises to the swarm: where its VXLAN goes
        (asked once: every fault and every check needs the addresses of all machines)."""
        if machine not in self._addresses:
            swarm = self.engine(machine).info()["Swarm"]
            self._addresses[machine] = str(swarm.get("NodeAddr") or "")
        return self._addresses[machine]

    def machine_fault(
        self, action: str, machine: str, peer: str = "", progress: Progress = silent
    ) -> None:
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
            attrs = self.manager().api.inspect_swarm()
            self._data_port = int(attrs.get("DataPathPort") or VXLAN_PORT)
        return self._data_port

    def drops(self) -> set[tuple[str, str]]:
        """The fault rules in force, whoever put them there, as (machine holding the rule,
        machine it drops): read from every machine that answers once per process, then
        from each machine whose rules ``machine_fault`` changes."""
        if self._drops is None:
            self._drops = set()
            for machine in self.engines_answering()[0]:
                self._holds(machine, self._iptables(machine, f"iptables -w -S {FAULT_CHAIN}; true"))
        return self._drops

    def _holds(self, machine: str, listed: str) -> None:
        """``machine``'s fault chain, as ``iptables -S`` listed it, into ``drops``."""
        by_address = {self.address_of(m): m for m in self.machines}
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
            for m in self.machines
            if m != machine
            and on_machine(self.placement, m)
            and frozenset((machine, m)) not in apart
        ]

        missing: list[str] = []
        told: list[str] = []

        def whole() -> bool:
            missing[:] = []
            for other in others:
                for network in self.topology.networks.values():
                    try:
                        peers = (
                            self.engine(other)
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
        states = self.states()
        names = {
            h: {i.network: [*dns_names(host, i), i.ip] for i in host.interfaces}
            for h, host in self.topology.hosts.items()
            if (state := states.get(h)) is not None
            and state.status == "running"
            and not unlike_promised(host, state.attached)
        }
        missing = []
        for asker, wanted in crossing_probes(names, self.placement, machine, apart).items():
            try:
                code, out = self.container(asker).exec_run(["python3", "-c", REACHES, *wanted])
            except (docker.errors.APIError, NotRunning) as exc:  # gone since it was listed
                missing.append(f"{asker} could not be asked ({exc})")
                continue
            text = out.decode(errors="replace") if isinstance(out, bytes) else ""
            lines = text.splitlines() or ([] if code == 0 else [f"the probe failed ({code})"])
            missing += [f"from {asker}: {line}" for line in lines]
        return missing

    def mend_machines(self, progress: Progress = silent, wait: bool = True) -> list[str]:
        """Every machine fault undone: the fault chain emptied, and then removed with its
        jumps, so that a machine keeps nothing of the lab's in its firewall. ``wait``:
        until the overlay carries each mended machine's traffic (not before removing
        the lab anyway)."""
        machines = list(self.machines) if not self._swept else sorted(self._faulted)
        up = set(self.engines_answering()[0])
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
        return helpers.run(self, "machine-fault", where, ["sh", "-c", script], "NET_ADMIN")

    # --- the Docker host, seen from a cluster -------------------------------------------

    def run_on_docker_host(self, steps: list[Step], t0: float) -> list[Event]:
        """Through published ports, from the machine that publishes them: a helper on
        the driver's engine in the test machine's network namespace (127.0.0.1 there is
        that machine's, where its engine bound the ports)."""
        machine = self._publisher_of(steps)
        outer = self._test_machine(
            machine,
            f"sending from the Docker host of {machine} is possible on the test cluster "
            "only (its machines are containers of this engine)",
            "send from a lab host (--from client)",
        )
        # Its hostname is the machine's: the events name the place as one engine's do.
        from lab.engine import helpers

        where = helpers.Namespace(f"container:{outer.id}", "docker-host")
        return helpers.run_script(self, where, steps, t0, timeout=120)  # across machines

    def publisher_pid(self, service: str) -> int | None:
        """On the test cluster, the machine container that publishes ``service``'s host's
        ports: its engine bound them on that container's 127.0.0.1."""
        machine = self.machine_of(self.topology.host_of(service).name)
        outer = self._test_machine(
            machine,
            f"{service}'s ports are published on machine {machine}, another machine's "
            "127.0.0.1: the fuzzer reaches them on the test cluster only",
            "fuzz on one engine or on the test cluster",
        )
        return int(outer.attrs["State"]["Pid"])

    def _test_machine(self, machine: str, what: str, fix: str) -> Container:
        """The container that is ``machine`` on the test cluster; on a real machine (no
        such container here) what can only be done on the test cluster is refused."""
        try:
            return self.client.containers.get(test_cluster.container_name(machine))
        except docker.errors.NotFound:
            raise LabError(what, fix) from None

    def shared_folder(self, host: str) -> Path | None:
        """On the test cluster, a folder every machine sees at the same path, mounts made
        here later included (a volatile disk): see lab/backends/swarm/machines.py."""
        machine = self.machine_of(host)
        self._test_machine(
            machine,
            f"a volatile disk for {host} must be mounted on its machine {machine}",
            "the power-loss rows run on one engine or on the test cluster",
        )
        folder = test_cluster.SHARED
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _publisher_of(self, steps: list[Step]) -> str:
        """The machine whose engine bound the published port the steps go to (each
        machine's engine publishes its own hosts' ports)."""
        wanted = {
            int(step["port"])
            for step in steps
            if step.get("op") in ("connect", "sendto") and step.get("host") == "127.0.0.1"
        }
        found = set()
        for host in self.topology.hosts.values():
            for p in host.published:
                with contextlib.suppress(NotRunning):
                    if self.published_port(host.name, p.container_port, p.protocol) in wanted:
                        found.add(self.machine_of(host.name))
        if len(found) != 1:
            raise LabError(
                f"no single machine publishes port {', '.join(map(str, sorted(wanted)))}"
                f" ({', '.join(sorted(found)) or 'none'} does)",
                "give the lab's published ports fixed numbers (LAB_*_PORT), or send from a host",
            )
        return found.pop()

    def capture_interfaces(self) -> str | None:
        """The underlay between the test cluster's machines: every frame any two of them
        exchange crosses its bridge, VXLAN-encapsulated."""
        try:
            network = self.client.networks.get(test_cluster.UNDERLAY)
        except docker.errors.NotFound:
            raise LabError(
                "captures between machines are taken on the test cluster's underlay only",
                "use `lab cluster make N`",
            ) from None
        options = network.attrs.get("Options") or {}
        return str(options.get("com.docker.network.bridge.name") or f"br-{(network.id or '')[:12]}")
