"""The running lab, seen and driven through the Docker SDK.

``Engine`` is given a Docker client, the topology and a Compose runner; it never
builds a client of its own. Compose brings the stack up and down; every
reading (states, health, addresses, port tables) comes from the Docker API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network as DockerNetwork

from lab import bundle
from lab.backends import health
from lab.backends.base import MachineFaults
from lab.backends.health import HEALTH_TIMEOUT
from lab.backends.model import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    SIGNALS,
    HostStatus,
    Owned,
    Removed,
    ServiceState,
    by_container,
    default_gateway,
    dns_names,
    port_is_free,
)
from lab.engine import base_image, build
from lab.engine.attached import AttachedExec, AttachedScript
from lab.engine.compose import Compose, port_in_use
from lab.engine.docker_client import inspected
from lab.engine.terminal import Command, Terminal, end_all
from lab.errors import (
    ComposeFailed,
    ComposeMissing,
    FaultError,
    LabError,
    NotRunning,
    PortTaken,
    TimedOut,
    UsageError,
)
from lab.interrupts import ctrl_c_ignored
from lab.names import PROJECT
from lab.progress import Phases, Progress
from lab.services.probes.porttable import Entry, HostSocket, RunningProcess
from lab.services.probes.sockscript import Event, Step
from lab.topology import PublishedPort, Topology

IMAGE_LABEL = f"org.opencontainers.image.title={PROJECT} services"  # set in services/Dockerfile
EXEC_TIMEOUT = 60.0  # the longest any command the driver runs in a container may take
KILLED = 128 + 9  # the exit status of a command coreutils' timeout ended with SIGKILL
CONFLICT = 409  # Docker's answer to an exec in a container that is stopped or paused
CGROUP_V1 = Path("/sys/fs/cgroup/memory/docker")


class Engine:
    def __init__(
        self,
        client: docker.DockerClient | None,
        topology: Topology,
        compose: Compose,
        project_dir: Path,
    ) -> None:
        """``client``: None connects on first use (what needs only the topology needs
        no Docker Engine)."""
        self._client = client
        self.topology = topology
        self.compose = compose
        self.project_dir = project_dir
        # Called with a host's name when it comes back with a new interface (started
        # again, or reconnected): a capture switches that interface's offload off too.
        self.on_host_back: list[Callable[[str], None]] = []
        self.up_phases: dict[str, float] = {}  # where the last `up` spent its time
        self.machine_faults: MachineFaults | None = None  # one engine has no machines

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            from lab.engine.docker_client import connect

            self._client = connect()
        return self._client

    def client_for(self, where: str) -> docker.DockerClient:
        """The engine that runs a service (or a helper in its namespaces): on one
        engine, that one; a lab across machines answers with the service's machine."""
        return self.client

    def clients(self) -> list[docker.DockerClient]:
        """Every engine the lab runs on (helpers are looked for on each)."""
        return [self.client]

    def lab_clients(self) -> list[docker.DockerClient]:
        """The engines that run the topology's own containers."""
        return [self.client]

    def machine_of(self, service: str) -> str:
        """The machine a service runs on ("" on one engine)."""
        return ""

    # --- reading ---------------------------------------------------------------

    @property
    def _label(self) -> dict[str, str | list[str] | bool]:
        return {"label": f"{PROJECT_LABEL}={self.topology.project}"}

    def containers(self) -> dict[str, Container]:
        found = self._containers()
        return {c.labels.get(SERVICE_LABEL, c.name or "?"): c for c in found}

    def _containers(self, service: str | None = None) -> list[Container]:
        """The project's containers (or one service's), inspected one by one."""
        return inspected(self.client, self._labels(service))

    def _labels(self, service: str | None = None) -> list[str]:
        labels = [f"{PROJECT_LABEL}={self.topology.project}"]
        return labels if service is None else [*labels, f"{SERVICE_LABEL}={service}"]

    def container(self, service: str) -> Container:
        self.topology.host_of(service)  # raises for an unknown name
        # One service's container only: this runs before every fault and every exec.
        found = self._containers(service)
        if not found:
            raise NotRunning(f"service {service}")
        return found[0]

    def states(self) -> dict[str, ServiceState]:
        return {
            name: ServiceState.of(c.attrs, self.topology.networks)
            for name, c in self.containers().items()
        }

    def publisher_pid(self, service: str) -> int | None:
        """The process whose network namespace holds ``service``'s published ports when it
        is not the driver's own (None: 127.0.0.1 here). See lab/engine/netns.py."""
        return None

    def published_port(self, service: str, container_port: int, protocol: str = "tcp") -> int:
        """The port on 127.0.0.1 where a service's port is published, as Docker bound it."""
        host = self.topology.host_of(service)
        bound = health.bound_port(self.container(host.name).attrs, container_port, protocol)
        if bound is not None:
            return bound
        raise NotRunning(f"a published {container_port}/{protocol} on {host.name}")

    def port_table(self, host: str) -> list[Entry]:
        """Read the host's listening sockets from inside it, like ``ss -ltunp``.

        The table is computed inside the host by services/probes/porttable.py; this side
        only decodes its JSON into the same Entry rows.
        """
        out = self.run_in(host, ["python3", "-m", "services.probes.porttable"])
        return self._named(host, [Entry(**row) for row in json.loads(out or b"[]")])

    def sockets(self, host: str) -> list[HostSocket]:
        """Every TCP and UDP socket of a host in any state, with its owner and fd, like
        ``ss -tanup`` (read inside the host by services/probes/porttable.py --all)."""
        out = self.run_in(host, ["python3", "-m", "services.probes.porttable", "--all"])
        return self._named(host, [HostSocket(**row) for row in json.loads(out or b"[]")])

    def processes_on(self, host: str) -> list[RunningProcess]:
        """The processes of a host's PID namespace, as its /proc shows them."""
        out = self.run_in(host, ["python3", "-m", "services.probes.porttable", "--processes"])
        return self._named(host, [RunningProcess(**row) for row in json.loads(out or b"[]")])

    def _named(self, host: str, rows: list[Owned]) -> list[Owned]:
        """Owners named by their container's Compose service (model.by_container); the
        containers are listed only when an owner needs it (one call, not inspected)."""
        if all(r.service or len(r.container) != 64 for r in rows):
            return rows
        listed = self.client_for(host).api.containers(all=True, filters={"label": self._labels()})
        return by_container(rows, listed, self.topology.processes)

    def pid_of(self, process: str) -> int:
        """A lab process's pid in its host's PID namespace, among those whose cgroup names
        the process's container: the owner of a port it declares (its first process may be
        tini or a shell that started it), else the oldest (a healthcheck is younger)."""
        spec, container = self.topology.processes[process], self.container(process)
        mine = {p.pid: p for p in self.processes_on(spec.host) if p.container == container.id}
        if not mine:
            raise NotRunning(f"process {process} (no process in container {container.short_id})")
        declared = {(p.number, p.transport) for p in spec.ports}
        for row in self.port_table(spec.host) if declared and len(mine) > 1 else []:
            if (row.port, row.protocol.rstrip("6")) in declared and row.pid in mine:
                return row.pid
        return min(mine.values(), key=lambda p: (p.started, p.pid)).pid

    def run_in(self, service: str, argv: list[str], timeout: float = EXEC_TIMEOUT) -> bytes:
        """Run a command inside a service's container; its stdout, or LabError with its stderr.

        The command is killed after ``timeout`` seconds (coreutils' ``timeout`` in the
        container: a client talking to a frozen server would otherwise wait for ever),
        and that is reported as ``TimedOut``.
        """
        return self.exec_in(service, argv, timeout)[0]

    def exec_in(
        self, service: str, argv: list[str], timeout: float = EXEC_TIMEOUT
    ) -> tuple[bytes, bytes]:
        """``run_in``, with what the command wrote to stderr too (a wrapping strace's trace)."""
        bounded = ["timeout", "-s", "KILL", f"{timeout:g}", *argv]
        try:
            code, output = self.container(service).exec_run(bounded, demux=True)
        except docker.errors.APIError as exc:
            if exc.status_code == CONFLICT:  # stopped or paused since it was listed
                raise NotRunning(service) from exc
            raise
        # With demux=True and no stream, the SDK returns (stdout, stderr), each bytes or None.
        out, err = cast(tuple[bytes | None, bytes | None], output)
        if code == KILLED:
            raise TimedOut(f"`{' '.join(argv)}` in {service}", timeout)
        if code != 0:
            detail = (err or out or b"").decode(errors="replace").strip()
            raise LabError(f"`{' '.join(argv)}` in {service} failed: {detail or f'exit {code}'}")
        return out or b"", err or b""

    def status(self) -> list[HostStatus]:
        """Each host: state, processes, port table, published ports (read side by side)."""
        return health.status(self)

    def logs(self, service: str, since: float | None = None) -> str:
        """What a service's process has written to its standard output and error
        (``since``: only lines from that Unix time on)."""
        container = self.container(service)
        raw = container.logs(since=since) if since is not None else container.logs()
        return bytes(raw).decode(errors="replace")

    def network(self, key: str | None = None) -> DockerNetwork:
        """A lab network as Docker holds it (the first one by default)."""
        name = self.topology.networks[key or self.topology.network].docker_name
        try:
            return self.client.networks.get(name)
        except docker.errors.NotFound:
            raise NotRunning(f"network {name}") from None

    def attach(self, service: str, argv: list[str]) -> AttachedExec:
        """A command started in a service's container, its streams attached: the driver
        acts while it runs, then reads what it wrote (lab/engine/attached.py)."""
        return AttachedExec(self.client_for(service), self.container(service), argv)

    def attach_script(self, host: str, t0: float, wrap: Sequence[str] = ()) -> AttachedScript:
        """A socket script served step by step in a host, its sockets kept between steps."""
        return AttachedScript(self.client_for(host), self.container(host), t0, wrap=wrap)

    def terminal(self, host: str) -> Terminal:
        """A shell on a terminal in a host, as the lab's unprivileged user (a browser's)."""
        return Terminal(self.client_for(host), self.container(host))

    def command(self, host: str, line: str) -> Command:
        """A command line run by a terminal's shell in a host, without a tty."""
        return Command(self.client_for(host), self.container(host), line)

    def end_terminals(self, host: str) -> None:
        """End every shell a terminal started in a host, and everything they started."""
        end_all(self.container(host))

    def memory(self, service: str) -> dict[str, int]:
        """A service's memory cgroup: ``usage`` (process and kernel) and, where the Docker
        host's cgroup v1 is readable here, its TCP buffers apart (``tcp``)."""
        container = self.container(service)
        folder = CGROUP_V1 / str(container.id)
        out: dict[str, int] = {}
        if (folder / "memory.usage_in_bytes").exists():  # the Docker host's own view (v1)
            out["usage"] = int((folder / "memory.usage_in_bytes").read_text())
            tcp = folder / "memory.kmem.tcp.usage_in_bytes"
            if tcp.exists():
                out["tcp"] = int(tcp.read_text())
            return out
        # elsewhere (v2, a remote engine): the API's view; stream=False gives one dict
        stats = cast("dict[str, Any]", container.stats(stream=False))
        out["usage"] = int(stats["memory_stats"].get("usage", 0))
        return out

    def remove_image(self, name: str) -> None:
        """An image gone from the driver's engine (one already gone: nothing)."""
        with suppress(docker.errors.ImageNotFound):
            self.client.images.remove(name, force=True)

    def started(self, service: str) -> tuple[str, int]:
        """When a service's container last started, and how often the engine restarted
        it: a process that died and came back between two looks differs in one."""
        attrs = self.container(service).attrs
        return str(attrs["State"].get("StartedAt")), int(attrs.get("RestartCount", 0))

    def beside_engine(self) -> bool:
        """Whether this driver shares the engine's machine and network namespace (what it
        mounts or binds here, the engine sees): see lab/engine/docker_client.py."""
        from lab.engine.docker_client import beside_engine

        return beside_engine(self.client)

    def shared_folder(self, host: str) -> Path | None:
        """A folder of this machine that ``host``'s engine can bind-mount as it is (None:
        any folder, the engine is this machine's)."""
        return None

    def run_on_docker_host(self, steps: list[Step], t0: float) -> list[Event]:
        """A socket script on the Docker host itself (through published ports): in the
        driver's own process where it shares the engine's network namespace, else in a
        helper that does (a driver in a dev container, or on another machine)."""
        from lab.engine import helpers
        from lab.engine.docker_client import beside_engine
        from lab.services.probes.sockscript import Runner

        if not beside_engine(self.client):
            return helpers.run_script(self, helpers.Namespace.docker_host(), steps, t0)
        runner = Runner(hostname="docker-host")
        runner.started = t0
        return runner.run(steps)

    def capture_interfaces(self) -> str:
        """Where a capture of the lab's frames is taken, on the Docker host: every lab
        network's Linux bridge, comma-separated (the capture helper's argument)."""
        return ",".join(self.bridge(key) for key in self.topology.networks)

    def bridge(self, key: str | None = None) -> str:
        """The Linux bridge behind a lab network, as Docker names it."""
        network = self.network(key)
        options = network.attrs.get("Options") or {}
        return str(options.get("com.docker.network.bridge.name") or f"br-{(network.id or '')[:12]}")

    def signal(self, service: str, kind: str) -> None:
        """Do one of SIGNALS to a service's container (kill, stop, start, pause, resume,
        restart), through the engine that runs it; FaultError when the engine refuses."""
        if kind not in SIGNALS:
            raise UsageError(f"no signal {kind!r}; one of: {', '.join(SIGNALS)}")
        container = self.container(service)
        actions: dict[str, Callable[[], object]] = {
            "kill": container.kill,
            "stop": lambda: container.stop(timeout=3),
            "start": container.start,
            "pause": container.pause,
            "resume": container.unpause,
            "restart": lambda: container.restart(timeout=1),
        }
        try:
            actions[kind]()
        except docker.errors.APIError as exc:
            raise FaultError(f"{kind} {service} failed: {exc.explanation or exc}") from None

    def disconnect(self, host: str, network: str) -> None:
        """Take a host off a lab network (by its key), through the engine that runs it."""
        container = self.container(host)
        engine = container.client or self.client
        name = self.topology.networks[network].docker_name
        try:
            engine.api.disconnect_container_from_network(str(container.id), name)
        except docker.errors.APIError as exc:
            raise FaultError(f"cut {host} off {network} failed: {exc.explanation or exc}") from None

    def connect(self, host: str, network: str) -> None:
        """Put a host back on a lab network at its address with its DNS names, as the
        topology promises (by name: an overlay is not listed on a worker until used)."""
        spec = self.topology.hosts[host]
        interface = next(i for i in spec.interfaces if i.network == network)
        container = self.container(host)
        engine = container.client or self.client
        name = self.topology.networks[network].docker_name
        try:
            engine.api.connect_container_to_network(
                str(container.id),
                name,
                ipv4_address=interface.ip,
                aliases=dns_names(spec, interface),
            )
        except docker.errors.APIError as exc:
            raise FaultError(f"heal {host} on {network} failed: {exc.explanation or exc}") from None

    def gateway(self) -> str:
        """The lab network's gateway (the Docker host's side), from the client host's routes."""
        routes = self.run_in(self.topology.client.name, ["cat", "/proc/net/route"])
        gateway = default_gateway(routes.decode())
        if gateway is None:
            raise LabError(f"{self.topology.client.name} has no default route")
        return gateway

    def run_script(
        self, service: str, steps: list[Step], t0: float | None = None, wrap: Sequence[str] = ()
    ) -> list[Event]:
        """Run a socket script inside a host (services/probes/sockscript.py); its recorded events.

        Event times count from ``t0`` (a CLOCK_MONOTONIC reading) when given, else
        from the script's own start. ``wrap``: a program to run it under (strace).
        """
        return self.run_script_with_stderr(service, steps, t0, wrap)[0]

    def run_script_with_stderr(
        self, service: str, steps: list[Step], t0: float | None = None, wrap: Sequence[str] = ()
    ) -> tuple[list[Event], str]:
        """``run_script``, with what the script (or the program it ran under) wrote to stderr."""
        clock = ["--t0", repr(t0)] if t0 is not None else []
        argv = [*wrap, "python3", "-m", "services.probes.sockscript", *clock, json.dumps(steps)]
        out, err = self.exec_in(service, argv)
        return [Event(**e) for e in json.loads(out)], err.decode(errors="replace")

    # --- changing --------------------------------------------------------------

    def up(
        self,
        progress: Progress,
        timeout: float = HEALTH_TIMEOUT,
        then: Callable[[], None] | None = None,
        build: bool = True,
    ) -> base_image.Plan:
        """Base image, build, start, and wait until every service is healthy.

        Interrupted or failed part-way, it removes what it started; a lab that was
        already there before is left for the user to look at. ``build=False``: the
        image was built already (by the first of several labs started together).
        """
        clock = Phases()
        self.check_ports_free()
        already_there = bool(self.owned().containers)
        chosen = self.prepare(progress, build, clock)
        with self._undo_on_failure(unless=already_there):
            self.start(progress, timeout, then, clock)
        self.up_phases = clock.phases
        return chosen

    def prepare(
        self, progress: Progress, build_image: bool = True, clock: Phases | None = None
    ) -> base_image.Plan:
        """The base image, and the service image built on it (unless it is up to date:
        see lab/engine/build.py)."""
        clock = clock or Phases()
        keep = None if bundle.is_builtin(self.project_dir) else self.project_dir
        chosen = base_image.ensure(self.client, keep, progress)
        clock.done("base image")
        # The base chosen above, for Compose files wherever they are (.env holds it
        # too, for a plain `docker compose` in the project folder).
        self.compose = self.compose.with_env(base_image.ENV_KEY, chosen.image)
        if not build_image:
            return chosen
        builds = self.topology.builds
        mark = build.fingerprint(builds, self._image_id, chosen.image)
        if build.up_to_date(builds, self._image_labels, mark):
            clock.done("build (up to date)")
        else:
            progress(f"building the service image on {chosen.image}")
            self.compose.with_env(build.ENV_KEY, mark).build()
            self.prune_old_images()
            clock.done("build")
        return chosen

    def start(
        self,
        progress: Progress,
        timeout: float,
        then: Callable[[], None] | None = None,
        clock: Phases | None = None,
    ) -> None:
        """Start what Compose describes (creating what is missing), then wait for health."""
        clock = clock or Phases()
        progress("starting containers")
        try:
            self.compose.up()
        except ComposeFailed as exc:
            port = port_in_use(exc.output)
            if port is not None:
                spec = self._published_by_port(port)
                hint = self.compose.port_hint(spec.container_port, spec.protocol)
                raise PortTaken(port, spec.protocol, hint) from None
            raise
        clock.done("containers started")
        self.wait_healthy(progress, timeout)
        clock.done("healthy")
        if then is not None:
            then()  # what the topology declares beyond Compose (routes, links)
        clock.done("routes and links")

    def _image_id(self, name: str) -> str:
        try:
            return str(self.client.images.get(name).id)
        except docker.errors.DockerException:  # none, or a build argument that is no image
            return ""

    def _image_labels(self, name: str) -> dict[str, str]:
        try:
            return dict(self.client.images.get(name).labels or {})
        except docker.errors.DockerException:
            return {}

    def prune_old_images(self) -> None:
        """Remove service images that a rebuild left untagged (each is a few hundred MB)."""
        self.client.images.prune(filters={"dangling": True, "label": IMAGE_LABEL})

    @contextmanager
    def undo_on_failure(self, unless: bool = False) -> Iterator[None]:
        """Remove the lab if the block fails or is interrupted (``unless`` it was there)."""
        with self._undo_on_failure(unless):
            yield

    @contextmanager
    def _undo_on_failure(self, unless: bool) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if not unless:
                with ctrl_c_ignored():  # a second Ctrl-C must not cut the clean-up short
                    self.down()
            raise

    def _published_by_port(self, port: int) -> PublishedPort:
        for host in self.topology.hosts.values():
            for p in host.published:
                if p.host_port == port:
                    return p
        return PublishedPort("127.0.0.1", port, port, "tcp")

    def check_ports_free(self) -> None:
        """Every fixed published port must be free on 127.0.0.1, unless the lab holds it.
        Asked only where this process shares the engine's network namespace (elsewhere,
        Docker's own error on `up` names the port)."""
        from lab.engine.docker_client import beside_engine

        if not beside_engine(self.client):
            return
        ours: set[int] = set()
        for container in self.containers().values():
            if container.attrs["State"]["Status"] == "running":
                for bindings in (container.attrs["NetworkSettings"].get("Ports") or {}).values():
                    ours.update(int(b["HostPort"]) for b in bindings or [])
        for host in self.topology.hosts.values():
            for p in host.published:
                fixed = p.host_port is not None and p.host_port not in ours
                if fixed and p.host_port and not port_is_free(p.host_ip, p.host_port, p.protocol):
                    hint = self.compose.port_hint(p.container_port, p.protocol)
                    raise PortTaken(p.host_port, p.protocol, hint)

    def wait_healthy(self, progress: Progress, timeout: float = HEALTH_TIMEOUT) -> None:
        """Until every service of the topology is running and healthy, with progress;
        Unhealthy names the first one that exited, or that is still waited for.

        Healthy is what the service's own healthcheck says: Docker's verdict, or the
        same check run by the lab at once (Docker runs it first one interval after a
        start, 1 s by default and 30 s in a named lab): see lab/engine/readiness.py.
        """
        health.wait_healthy(self, progress, timeout)

    def answering(self) -> set[str]:
        """The services ready now (see lab/backends/health.py)."""
        return health.answering(self)

    def down(self) -> Removed:
        """Remove every container, network and volume of the project, even half-made ones."""
        found = self.owned()
        with suppress(ComposeFailed, ComposeMissing):
            self.compose.down()  # the sweep below removes what Compose could not
        self.sweep()
        return found

    def owned(self) -> Removed:
        """Everything Docker holds that carries this project's label."""
        label = self._label
        return Removed(
            sorted(c.name or "?" for c in self._containers()),
            sorted(n.name or "?" for n in self.client.networks.list(filters=label)),
            sorted(v.name or "?" for v in self.client.volumes.list(filters=label)),
        )

    def sweep(self) -> None:
        label = self._label
        # Anything may already be gone (Compose got there first): NotFound is success.
        for c in self._containers():
            with suppress(docker.errors.NotFound):
                c.remove(force=True, v=True)
        for n in self.client.networks.list(filters=label):
            with suppress(docker.errors.NotFound):
                n.remove()
        for v in self.client.volumes.list(filters=label):
            with suppress(docker.errors.NotFound):
                v.remove(force=True)
