"""The lab as a Python object: what a lab script, the REPL or a notebook holds.

    import lab

    net = lab.open()                      # the lab of this folder (or the lab's own)
    net.process("db").kill()              # left broken, as `lab chaos kill db`
    with net.fault("pause", "tcp-shout"): # undone at the end of the block, whatever happens
        print(net.send("tcp", "hello"))
    with lab.started() as net:            # up for the block, and removed after it
        ...
    ada = lab.open(name="ada")            # a named lab: one of many side by side
    ada.up()                              # its own project, subnet and ports

Nothing here prints or exits: errors are ``lab.LabError`` with a ``line()`` to
show, results are objects that print well. The command line (``lab.cli``) is a
thin layer over this module.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import bundle, journal
from lab.backends.engine import Engine
from lab.backends.model import HostStatus, Removed, ServiceState
from lab.chaos import declared, faults, impairment, links
from lab.engine import base_image, helpers, named
from lab.engine.attached import AttachedScript
from lab.engine.compose import COMPOSE_FILES, Compose
from lab.engine.docker_client import Client
from lab.errors import NotRunning, UsageError
from lab.parts import HostView, ProcessView
from lab.progress import Progress, silent
from lab.services.probes.sockscript import Step
from lab.topology import Endpoint, Topology
from lab.traffic import clients
from lab.traffic.script import Events, Script, steps_of

if TYPE_CHECKING:
    from lab.engine.terminal import Command, Terminal
    from lab.experiments.model import Result
    from lab.packets.capture import CaptureInfo
    from lab.syscalls.strace import Syscall
    from lab.syscalls.trace import Trace

DOCKER_HOST = "docker-host"  # where `send --from docker-host` runs: this machine


def workdir_for(files: Iterable[Path] = ()) -> Path:
    """Where Compose should start looking, by its own conventions: this folder if it
    names or holds Compose files, else the default lab the package carries."""
    here = Path.cwd()
    if list(files) or os.environ.get("COMPOSE_FILE"):
        return here
    if any((here / name).exists() for name in COMPOSE_FILES):
        return here
    return bundle.ROOT


def open(
    project_dir: str | Path | None = None,
    *,
    files: Iterable[str | Path] = (),
    project: str | None = None,
    env: Mapping[str, str] | None = None,
    client: Client | None = None,
    name: str | None = None,
    cluster: str | None = None,
) -> Lab:
    """The lab the Compose files describe, running or not (``up()`` starts it). Docker
    Engine is connected to on first use.

    ``project_dir``: where Compose runs (default: this folder if it holds Compose
    files, else the default lab the package carries); ``files``: as ``docker compose -f``;
    ``project``: as ``-p``; ``env``: variables for Compose on top of the environment.
    ``name``: a named lab, one of many side by side (docs/classroom.md): if it exists,
    it is opened as it was started (its files, subnet and ports, whatever the other
    arguments say); if not, ``up()`` starts it on a subnet and ports of its own.
    ``cluster``: the lab across several machines (default: $LAB_CLUSTER): ``test`` for
    the test cluster `lab cluster make N` made here, or ``m1=URL,m2=URL`` or Docker
    context names (docs/scale-out.md).
    """
    from lab.backends import swarm as clusters

    cluster = cluster if cluster is not None else os.environ.get(clusters.ENV) or None
    paths = tuple(Path(f) for f in files)
    workdir = Path(project_dir).resolve() if project_dir else workdir_for(paths)
    compose = Compose(workdir, project, paths, dict(env or {}))
    Compose.version()
    if name is not None:
        if project:
            raise UsageError(
                f"a named lab's project is {named.project_of(name)}", "give a name or a project"
            )
        if cluster:
            raise UsageError("a named lab runs on one engine", "give --name or --cluster")
        return _open_named(compose, named.check_name(name), client)
    if cluster:
        from lab.backends.swarm.swarm import Swarm
        from lab.topology import from_config

        config = compose.config()
        topology = from_config(config)
        machines = clusters.resolve(cluster, client)
        compose = compose.named(topology.project)
        return Lab(Swarm(client, topology, compose, workdir, machines, config))
    topology = compose.topology()
    stack = Engine(client, topology, compose.named(topology.project), workdir)
    return Lab(stack)


def _open_named(base: Compose, name: str, client: Client | None) -> Lab:
    if client is None:
        from lab.engine.docker_client import connect

        client = connect()
    record = named.find(client, name)
    if record is not None:
        compose, topology = named.compose_of(record)
        return Lab(Engine(client, topology, compose, Path(record.workdir)), name=name)
    # Not started yet: its subnet and ports are chosen by up(); till then, the files as
    # they are, under its project name.
    plain = Compose(base.workdir, named.project_of(name), base.files, base.env)
    return Lab(Engine(client, plain.topology(), plain, base.workdir), name=name, new=base)


@contextlib.contextmanager
def started(
    project_dir: str | Path | None = None,
    *,
    files: Iterable[str | Path] = (),
    project: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 180.0,
    progress: Progress = silent,
    name: str | None = None,
) -> Iterator[Lab]:
    """A lab that is up for the block. One this started is removed after it, whatever
    happens; one that was already running is left running."""
    net = open(project_dir, files=files, project=project, env=env, name=name)
    already = net.is_running()
    net.up(timeout=timeout, progress=progress)
    try:
        yield net
    finally:
        if not already:
            net.down()


class SocketSession:
    """One socket session: ``step(op=..., sock=..., ...)`` runs one step, its events back.
    A traced one has its system calls in ``syscalls`` once its block has ended."""

    def __init__(self, inner: AttachedScript, project: str, t0: float) -> None:
        self.inner = inner
        self.project = project
        self.t0 = t0
        self.syscalls: builtins.list[Syscall] = []

    def step(self, **step: Any) -> Events:
        events = Events(self.inner.step(**step))
        journal.socket_events(self.project, events, self.t0)
        return events


@dataclass(frozen=True)
class Sent:
    """One conversation with a target: every socket event, and what came back."""

    endpoint: Endpoint
    address: str  # where it was sent: NAME:PORT inside the lab, 127.0.0.1:PORT from outside
    origin: str
    events: Events
    syscalls: tuple[Syscall, ...] = ()  # the client's system calls, when it was traced

    @property
    def reply(self) -> str:
        return clients.reply_text(self.endpoint.port.protocol, self.events)

    @property
    def error(self) -> str:
        return self.events.failure()

    def __repr__(self) -> str:
        head = f"{self.endpoint.label} at {self.address} (from {self.origin})"
        return f"{head}: {self.error or 'ok'}\n{self.events!r}\n{self.reply}"


class Lab:
    """A lab: its topology, its hosts and processes, and what can be done to them."""

    def __init__(
        self, backend: Engine, name: str | None = None, new: Compose | None = None
    ) -> None:
        self.backend = backend
        self.name = name  # a named lab's name (None: a lab of its own project)
        self._new = new  # a named lab not started yet: the files it will be started from

    @property
    def topology(self) -> Topology:
        return self.backend.topology

    @property
    def project(self) -> str:
        return self.topology.project

    @property
    def builtin(self) -> bool:
        """Whether this is the default lab the package carries (no Compose files of yours)."""
        return bundle.is_builtin(self.backend.project_dir)

    def __repr__(self) -> str:
        t = self.topology
        if self.name and self._new is not None:
            return f"<Lab {self.name} (not started): project {t.project}>"
        return f"<Lab {t.project}: hosts {', '.join(t.hosts)}; processes {', '.join(t.processes)}>"

    # --- parts ------------------------------------------------------------------

    @property
    def hosts(self) -> dict[str, HostView]:
        return {name: HostView(self, name) for name in self.topology.hosts}

    @property
    def processes(self) -> dict[str, ProcessView]:
        return {name: ProcessView(self, name) for name in self.topology.processes}

    def host(self, name: str) -> HostView:
        self.topology.host(name)
        return HostView(self, name)

    def process(self, name: str) -> ProcessView:
        if name not in self.topology.processes:
            raise UsageError(
                f"no process named {name!r}", f"one of: {', '.join(self.topology.processes)}"
            )
        return ProcessView(self, name)

    @property
    def client(self) -> HostView:
        """The workbench host (``socklab.role: client``)."""
        return HostView(self, self.topology.client.name)

    # --- state --------------------------------------------------------------------

    def is_running(self) -> bool:
        return bool(self.backend.states())

    def states(self) -> dict[str, ServiceState]:
        return self.backend.states()

    def status(self) -> list[HostStatus]:
        """Every host: its state, processes, port table and published ports."""
        return self.backend.status()

    def wait_healthy(self, timeout: float = 30.0, progress: Progress = silent) -> None:
        if not self.is_running():
            raise NotRunning(f"the lab (project {self.project})")
        self.backend.wait_healthy(progress, timeout)

    def published_port(self, service: str, port: int, transport: str = "tcp") -> int:
        """Where a port of a host (or of a process, on its host) is published on 127.0.0.1."""
        return self.backend.published_port(service, port, transport)

    def gateway(self) -> str:
        """The client host's default gateway: the Docker host's side of the network."""
        return self.backend.gateway()

    # --- the lab's life --------------------------------------------------------------

    def up(
        self, timeout: float = 180.0, progress: Progress = silent, build: bool = True
    ) -> base_image.Plan:
        """Build, start, wait for health, then put declared routes and links in place.
        A failure or Ctrl-C part-way removes what it started. ``build=False``: the
        service image is already built (several labs started one after another)."""
        if self._new is not None and self.name is not None:
            self.backend, chosen = named.up_new(
                self.backend,
                self._new,
                self.name,
                progress,
                timeout,
                lambda stack: declared.apply_all(stack, progress),
                build,
            )
            self._new = None
            return chosen
        return self.backend.up(
            progress,
            timeout=timeout,
            then=lambda: declared.apply_all(self.backend, progress),
            build=build,
        )

    def prepare(self, progress: Progress = silent) -> base_image.Plan:
        """Build the base image and the lab's image, starting nothing (labs to come)."""
        return self.backend.prepare(progress)

    def down(self) -> Removed:
        """Remove every container, network and volume of the lab (helpers too), and any
        volatile disk a killed run left mounted."""
        from lab.chaos import powerloss

        removed = self.backend.down()
        powerloss.sweep(self.project)
        if self.name:
            named.forget(self.name)
        return removed

    def restore(self, progress: Progress = silent) -> list[str]:
        """Mend whatever differs from the topology: states, addresses, names, routes, links."""
        from lab.engine import helpers

        done = faults.restore(self.backend, progress)
        done += [f"removed {name}" for name in helpers.remove_all(self.backend)]
        declared.apply_all(self.backend, reset_links=True)
        return done

    # --- traffic ---------------------------------------------------------------------

    def run(
        self, script: Script | builtins.list[Step], on: str | None = None, t0: float | None = None
    ) -> Events:
        """Run a socket script on a host (the client by default) or on the Docker host
        (``on="docker-host"``); its events. ``t0``: a CLOCK_MONOTONIC time to count from."""
        return self._run(script, on, t0)[0]

    def run_traced(
        self, script: Script | builtins.list[Step], on: str | None = None, t0: float | None = None
    ) -> tuple[Events, builtins.list[Syscall]]:
        """``run`` under strace in the host: its events, and the system calls that made them
        (on the same clock). Not on the Docker host: the lab traces inside its own hosts."""
        return self._run(script, on, t0, traced=True)

    def _run(
        self,
        script: Script | builtins.list[Step],
        on: str | None,
        t0: float | None,
        traced: bool = False,
    ) -> tuple[Events, builtins.list[Syscall]]:
        steps = steps_of(script)
        t0 = time.monotonic() if t0 is None else t0  # events on the one clock watchers share
        calls: builtins.list[Syscall] = []
        if traced:
            from lab.syscalls.trace import run_traced

            host = self._traceable(on)
            found, calls = run_traced(self.backend, host, steps, t0)
            events = Events(found)
            journal.syscalls(self.project, calls, t0)
        elif on == DOCKER_HOST:
            events = Events(self.backend.run_on_docker_host(steps, t0))
        else:
            host = on or self.topology.client.name
            self.topology.host(host)
            events = Events(self.backend.run_script(host, steps, t0))
        journal.socket_events(self.project, events, t0)
        return events, calls

    def _traceable(self, on: str | None) -> str:
        if on == DOCKER_HOST:
            raise UsageError(
                "system calls are traced inside the lab's hosts, not on the Docker host",
                "send from a lab host (--from client)",
            )
        host = on or self.topology.client.name
        self.topology.host(host)
        return host

    @contextlib.contextmanager
    def session(
        self, on: str | None = None, t0: float | None = None, *, traced: bool = False
    ) -> Iterator[SocketSession]:
        """A socket session on a host whose sockets outlive each step: act on the lab
        between steps and see what the very same socket does next. ``traced``: under
        strace; its system calls are in ``session.syscalls`` after the block."""
        host = self._traceable(on) if traced else on or self.topology.client.name
        t0 = time.monotonic() if t0 is None else t0
        if not traced:
            with self.backend.attach_script(host, t0) as s:
                yield SocketSession(s, self.project, t0)
            return
        from lab.syscalls.strace import command
        from lab.syscalls.trace import offset_now, script_calls

        offset = offset_now()
        inner = self.backend.attach_script(host, t0, wrap=command())
        session = SocketSession(inner, self.project, t0)
        with inner:
            yield session
            session.syscalls = script_calls(inner.finish(), t0 + offset, host)
        journal.syscalls(self.project, session.syscalls, t0)

    def check(
        self,
        path: str | Path,
        role: str = "tcp-shout",
        port: int | None = None,
        progress: Progress = silent,
        by: str = "",
    ) -> Result:
        """Run the server in ``path`` in place of ``role`` (tcp-shout, udp-shout, or an
        assignment file) and judge each property from what the kernel did (docs/checking.md).
        ``port``: where it listens (default: the role's)."""
        from lab.check import check, resolve

        return check(self, Path(path), resolve(role).with_port(port), progress=progress, by=by)

    @contextlib.contextmanager
    def tracing(
        self, process: str, t0: float | None = None, progress: Progress = silent
    ) -> Iterator[Trace]:
        """Trace a process's socket system calls while the block runs (strace, from a helper
        holding only CAP_SYS_PTRACE, removed after the block whatever happens). After the
        block the Trace holds its calls, and the socket events of every lab command that
        ran meanwhile, all counted from ``trace.t0`` (``t0``: a CLOCK_MONOTONIC reading;
        default: now)."""
        from lab.syscalls.trace import tracing

        with tracing(self.backend, process, t0, progress=progress) as trace:
            yield trace

    def send(
        self,
        target: str,
        *words: str,
        origin: str | None = None,
        data: str = "",
        unconnected: bool = False,
        traced: bool = False,
    ) -> Sent:
        """One conversation with ``target`` (a process, ``NAME:PORT[/udp]``, or a shortcut),
        in the protocol it declares. ``origin``: a host (the client by default) or
        ``"docker-host"``, which goes through the port published on 127.0.0.1.
        ``traced``: run it under strace in its host (``Sent.syscalls``)."""
        endpoint = self.topology.endpoint(target)
        origin = origin or self.topology.client.name
        port = endpoint.port
        if origin == DOCKER_HOST:
            name, number = (
                "127.0.0.1",
                self.published_port(endpoint.host, port.number, port.transport),
            )
        else:
            self.topology.host(origin)
            name, number = self._name_inside(endpoint, origin), port.number
        steps = clients.conversation(
            port.protocol,
            port.transport,
            name,
            number,
            list(words),
            data=data,
            unconnected=unconnected,
        )
        events, calls = self._run(steps, origin, None, traced=traced)
        return Sent(endpoint, f"{name}:{number}", origin, events, tuple(calls))

    def _name_inside(self, endpoint: Endpoint, origin: str) -> str:
        """How a lab host reaches the endpoint: by a DNS name where Docker's DNS has one for
        it (they share a network), else by address (through a router, say)."""
        host = self.topology.hosts[endpoint.host]
        shared = set(host.networks) & set(self.topology.hosts[origin].networks)
        if not shared:
            return host.ip
        if endpoint.process and endpoint.process in host.aliases:
            return endpoint.process
        return host.name

    # --- breaking and mending ------------------------------------------------------------

    @contextlib.contextmanager
    def fault(
        self, kind: str, *targets: str, progress: Progress = silent
    ) -> Iterator[faults.Chaos]:
        """A fault (kill, stop, pause, cut, restart) on each target for the block; undone
        however the block ends, Ctrl-C included, and the lab healthy again after."""
        with faults.injected(self.backend, progress) as chaos:
            for target in targets:
                chaos.apply(kind, target)
            yield chaos

    def chaos(self, kind: str, target: str, progress: Progress = silent) -> None:
        """Apply one fault (or its undoing: start, resume, heal) and leave it in place."""
        faults.Chaos(self.backend, progress).apply(kind, target)

    def breaker(self, progress: Progress = silent) -> faults.Chaos:
        """Faults applied one at a time and left in place, each noted so that
        ``undo_all()`` mends them together later (what the web page broke)."""
        return faults.Chaos(self.backend, progress)

    def link(self, host: str, spec: str | impairment.Impairment) -> str:
        """Impair a host's link (``"loss 10% delay 50ms"``) until ``unlink``; which netem."""
        imp = impairment.parse(spec.split()) if isinstance(spec, str) else spec
        return links.apply(self.backend, self.topology.host(host).name, imp)

    def unlink(self, host: str) -> None:
        """Back to the link the topology declares (a clean one unless it declares one)."""
        declared.apply_link(self.backend, self.topology.host(host))

    def link_state(self, host: str) -> str:
        return links.show(self.backend, self.topology.host(host).name)

    @contextlib.contextmanager
    def impaired(self, host: str, spec: str | impairment.Impairment) -> Iterator[str]:
        """An impaired link for the block; put back as declared however it ends."""
        imp = impairment.parse(spec.split()) if isinstance(spec, str) else spec
        try:
            with links.impaired(self.backend, self.topology.host(host).name, imp) as how:
                yield how
        finally:
            declared.apply(self.backend, host)

    def frames_live(self) -> helpers.Helper:
        """A capture of every lab network's frames, streamed as pcap (``stream()``) until
        it is removed: the web view's live frames."""
        return helpers.start(
            self.backend,
            "capture-web",
            helpers.Namespace.docker_host(),
            [
                "python3",
                "-m",
                "services.helpers.capture",
                self.backend.capture_interfaces(),
                "-",
            ],
            "NET_RAW",
            streamed=True,
        )

    def terminal(self, host: str | None = None) -> Terminal:
        """A shell on a terminal in a host (the client by default), as the lab's
        unprivileged user: ``read``/``write`` bytes, ``resize``, ``close`` (ends it all)."""
        return self.backend.terminal(self.topology.host_of(host or self.topology.client.name).name)

    def command(self, line: str, host: str | None = None) -> Command:
        """A command line run as a terminal's shell would run it in a host (the client by
        default), with no tty: ``output()`` yields (stdout, stderr) pieces, then
        ``exit_code()``; ``close()`` ends what it left running."""
        return self.backend.command(
            self.topology.host_of(host or self.topology.client.name).name, line
        )

    def end_terminals(self, host: str | None = None) -> None:
        """End every terminal's shell in a host (the client by default), and all they started."""
        self.backend.end_terminals(host or self.topology.client.name)

    def remove_my_helpers(self) -> list[str]:
        """The helpers this process started and still holds (a Ctrl-C can land between
        Docker creating one and its owner holding it): every command's last word."""
        return helpers.remove_mine(self.backend)

    def address_names(self) -> dict[str, str]:
        """IP address -> host name, the Docker host (the client's gateway) included."""
        from lab.packets import report as packet_report

        return packet_report.host_names(self.backend)

    @contextlib.contextmanager
    def capture(
        self,
        path: str | Path,
        *,
        offload: bool = False,
        progress: Progress = silent,
        purpose: str = "capture",
    ) -> Iterator[CaptureInfo]:
        """Every frame on the lab's networks into a pcap file while the block runs.
        ``lab.packets.dissect.read(info.path)`` takes it apart afterwards. ``offload``:
        leave the hosts' checksum offload on (their sums are then left unfinished)."""
        from lab.packets.capture import capturing

        with capturing(
            self.backend, Path(path), offload=offload, progress=progress, purpose=purpose
        ) as info:
            yield info
