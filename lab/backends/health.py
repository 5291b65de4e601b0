"""When a lab is ready, and what it looks like now.

Ready: every service running and healthy, by Docker's verdict or by its own healthcheck
run at once (lab/engine/readiness.py), with progress, to a deadline. Its look
(``status``): each host's state, processes, port table and published ports.

Both inspect every container of the lab, and status reads a port table in every host
too. Each read waits on the engine (a port table is an exec and a Python start in the
host), so the reads are made side by side, a few at a time, within one deadline: one
after another, their cost would grow with every host a topology adds.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as all_done
from typing import TYPE_CHECKING, Any, TypeVar

import docker.errors
from docker.models.containers import Container

from lab.backends.model import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    HostStatus,
    ServiceState,
    unlike_promised,
)
from lab.engine import readiness
from lab.errors import NotRunning, TimedOut, Unhealthy
from lab.progress import Progress
from lab.waiting import wait_until

if TYPE_CHECKING:
    from lab.backends.engine import Engine

HEALTH_TIMEOUT = 120.0
POLL = 0.25
# Reads at once: under the Docker SDK's pool of 10 connections to one engine (beyond it,
# urllib3 opens and drops extra connections, with a warning on stderr).
READERS = 8
READ_DEADLINE = 60.0  # a whole round of reads: as long as one exec may take (EXEC_TIMEOUT)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def side_by_side(
    read: Callable[[K], T], keys: Sequence[K], what: str, deadline: float = READ_DEADLINE
) -> dict[K, T]:
    """``read(key)`` for every key, READERS at a time, all within one deadline. The first
    read that failed raises its own error; TimedOut names the keys still unread."""
    if not keys:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(READERS, len(keys)))
    try:
        futures = {key: pool.submit(read, key) for key in keys}
        _, late = all_done(futures.values(), timeout=deadline)
        if late:
            unread = [str(k) for k, f in futures.items() if f in late]
            raise TimedOut(f"{what}: {', '.join(unread)}", deadline)
        return {key: future.result() for key, future in futures.items()}
    finally:
        # Nothing waits for a late read: it ends by its own bound (the exec's, the API's).
        pool.shutdown(wait=False, cancel_futures=True)


def containers(engine: Engine) -> dict[str, Container]:
    """The lab's containers on every engine it runs on, by service, inspected side by side
    (Engine.containers, one inspection after another, costs a round trip per container)."""
    labels = {"label": [f"{PROJECT_LABEL}={engine.topology.project}"]}
    clients = engine.lab_clients()
    listed = [
        (i, str(summary["Id"]))
        for i, client in enumerate(clients)
        for summary in client.api.containers(all=True, filters=labels)
    ]

    def inspect(item: tuple[int, str]) -> Container | None:
        try:
            return clients[item[0]].containers.get(item[1])
        except docker.errors.NotFound:  # gone since it was listed (Compose removing it)
            return None

    found = side_by_side(inspect, listed, "inspecting containers")
    return {c.labels.get(SERVICE_LABEL, c.name or "?"): c for c in found.values() if c is not None}


def status(engine: Engine) -> list[HostStatus]:
    """Each host of the topology: its state, its processes' states, its port table (read
    in every running host side by side) and where Docker published its ports."""
    found = containers(engine)
    states = {n: ServiceState.of(c.attrs, engine.topology.networks) for n, c in found.items()}
    if not states:
        raise NotRunning(f"the lab (project {engine.topology.project})")
    running = [h for h in engine.topology.hosts if h in states and states[h].status == "running"]
    tables = side_by_side(engine.port_table, running, "reading the port table of")
    report = []
    for host in engine.topology.hosts.values():
        state = states.get(host.name)
        attrs = found[host.name].attrs if host.name in tables else None
        report.append(
            HostStatus(
                host=host,
                state=state,
                processes=[states[p] for p in host.processes if p in states],
                ports=tables.get(host.name),
                published=[
                    (p, bound_port(attrs, p.container_port, p.protocol) if attrs else None)
                    for p in host.published
                ],
                differs=unlike_promised(host, state.attached) if attrs and state else [],
            )
        )
    return report


def bound_port(attrs: dict[str, Any], container_port: int, protocol: str) -> int | None:
    """Where Docker published a container's port on the Docker host (None: nowhere), read
    from the container as inspected."""
    ports = attrs["NetworkSettings"].get("Ports") or {}
    for binding in ports.get(f"{container_port}/{protocol}") or []:
        return int(binding["HostPort"])
    return None


def wait_healthy(engine: Engine, progress: Progress, timeout: float = HEALTH_TIMEOUT) -> None:
    """Until every service of the topology is running and healthy, with progress;
    Unhealthy names the first one that exited, or that is still waited for.

    Healthy is what the service's own healthcheck says: Docker's verdict, or the
    same check run by the lab at once (Docker runs it first one interval after a
    start, 1 s by default and 30 s in a named lab): see lab/engine/readiness.py.
    """
    expected = set(engine.topology.services)
    last = [""]
    waiting: list[str] = []
    states: dict[str, ServiceState] = {}
    answered: dict[str, str] = {}  # passed its own check, run by the lab: in which start
    inside_at: dict[str, float] = {}  # when the lab last ran a check inside each container

    def all_ready() -> bool:
        nonlocal states, waiting
        found = containers(engine)
        states = {n: ServiceState.of(c.attrs, engine.topology.networks) for n, c in found.items()}
        for name, state in states.items():
            if name in expected and state.status in ("exited", "dead"):
                raise Unhealthy(
                    state.service,
                    f"exited with code {state.exit_code}",
                    _last_words(engine, state.service),
                )
        ready = _ready(engine, found, states, expected, answered, inside_at)
        waiting = sorted(expected - ready)
        line = f"{len(ready)}/{len(expected)} healthy" + (
            f", waiting for {', '.join(waiting)}" if waiting else ""
        )
        if line != last[0]:
            progress(line)
            last[0] = line
        return not waiting

    try:
        wait_until(all_ready, timeout, "every service to be healthy", poll=POLL)
    except TimedOut:
        service = waiting[0]
        state = states.get(service)
        state_text = (
            "no container"
            if state is None
            else state.status
            if state.status != "running"
            else state.health
        )
        raise Unhealthy(service, state_text, _last_words(engine, service)) from None


def answering(engine: Engine) -> set[str]:
    """The services ready now: Docker says healthy, or their own healthcheck passes
    when the lab runs it (see lab/engine/readiness.py)."""
    found = containers(engine)
    states = {n: ServiceState.of(c.attrs, engine.topology.networks) for n, c in found.items()}
    return _ready(engine, found, states, set(states), {})


def _ready(
    engine: Engine,
    containers: dict[str, Container],
    states: dict[str, ServiceState],
    among: set[str],
    answered: dict[str, str],
    inside_at: dict[str, float] | None = None,
) -> set[str]:
    """Which of ``among`` are ready: Docker says healthy, or their own check passed,
    now or earlier in the same start (``answered``: service -> StartedAt, kept up to
    date here, so that a check passed before a restart says nothing of the new start)."""
    started = {n: str(c.attrs["State"].get("StartedAt", "")) for n, c in containers.items()}
    ready = {s for s in among if s in states and states[s].ready}
    ready |= {s for s, at in answered.items() if s in among and started.get(s) == at}
    pending = {
        s: (containers[s], *_address_of(engine, s, states))
        for s in among - ready
        if s in states and states[s].status == "running"
    }
    answered.update({s: started[s] for s in readiness.answering(pending, inside_at=inside_at)})
    return ready | {s for s, at in answered.items() if s in among and started.get(s) == at}


def _address_of(engine: Engine, service: str, states: dict[str, ServiceState]) -> tuple[str, str]:
    """The address of the host a service is or runs on, as Docker gave it, and the
    subnet of that (first) network."""
    host = engine.topology.host_of(service)
    subnet = engine.topology.networks[host.interfaces[0].network].subnet if host.interfaces else ""
    return (states[host.name].ip if host.name in states else ""), subnet


def _last_words(engine: Engine, service: str) -> str:
    """The most telling line: the last failed healthcheck, else the last log line."""
    container = engine.containers().get(service)
    if container is None:
        return "its container was never created"
    health_log = (container.attrs["State"].get("Health") or {}).get("Log") or []
    if health_log and health_log[-1].get("Output", "").strip():
        return str(health_log[-1]["Output"]).strip().splitlines()[-1]
    logs = container.logs(tail=5).decode(errors="replace").strip().splitlines()
    return logs[-1] if logs else "no log output"
