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
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
import docker.types
from docker.models.containers import Container
from docker.models.networks import Network as DockerNetwork

from lab import names
from lab.backends.engine import Engine
from lab.backends.health import HEALTH_TIMEOUT
from lab.backends.model import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    HostStatus,
    Removed,
)
from lab.backends.swarm import machines as test_cluster
from lab.backends.swarm.faults import SwarmFaults
from lab.backends.swarm.placement import (
    Machine,
    machine_config,
    on_machine,
    place,
)
from lab.engine import base_image, hardening
from lab.engine.compose import Compose
from lab.engine.docker_client import inspected
from lab.errors import DockerUnavailable, LabError, NotRunning, TimedOut
from lab.names import PROJECT
from lab.progress import Phases, Progress
from lab.services.probes.sockscript import Event, Step
from lab.topology import Topology
from lab.waiting import wait_until

CLUSTER_LABEL = names.label("cluster")  # on the overlay networks the lab makes
ANCHOR_LABEL = names.label("anchor")  # a container that keeps an overlay present on a machine
VXLAN_OVERHEAD = 50  # outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8
NETWORK_GONE_TIMEOUT = 30.0  # an overlay is removable once every machine let go of it


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


class Swarm(Engine):
    """An Engine whose hosts live on several engines (one per machine, joined in a swarm);
    the driver's own engine builds. Machine faults: faults.py (``machine_faults``)."""

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
        self._manager: str | None = None
        self.faults = SwarmFaults(self)
        self.machine_faults = self.faults

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

    def lab_clients(self) -> list[docker.DockerClient]:
        return [self.engine(m) for m in self.machines]

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
        """On the service's machine (every machine for the whole project)."""
        where = (
            [self.placement[service]]
            if service is not None and service in self.placement
            else list(self.machines)
        )
        return [c for m in where for c in inspected(self.engine(m), self._labels(service))]

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

    def network(self, key: str | None = None) -> DockerNetwork:
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
        then: Callable[[], None] | None = None,
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
        then: Callable[[], None] | None = None,
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
        return inspected(engine, self._labels())

    def down(self) -> Removed:
        found = self.owned()
        with contextlib.suppress(LabError):  # the lab's image may be gone already
            self.faults.mend(wait=False)
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

    def capture_interfaces(self) -> str:
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
