"""When a lab is ready: every service running and healthy, by Docker's verdict or by its
own healthcheck run at once (lab/engine/readiness.py), with progress, to a deadline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docker.models.containers import Container

from lab.backends.model import ServiceState
from lab.engine import readiness
from lab.errors import TimedOut, Unhealthy
from lab.progress import Progress
from lab.waiting import wait_until

if TYPE_CHECKING:
    from lab.backends.engine import Engine

HEALTH_TIMEOUT = 120.0
POLL = 0.25


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

    def all_ready() -> bool:
        nonlocal states, waiting
        containers = engine.containers()
        states = {
            n: ServiceState.of(c.attrs, engine.topology.networks) for n, c in containers.items()
        }
        for name, state in states.items():
            if name in expected and state.status in ("exited", "dead"):
                raise Unhealthy(
                    state.service,
                    f"exited with code {state.exit_code}",
                    _last_words(engine, state.service),
                )
        ready = _ready(engine, containers, states, expected, answered)
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
    containers = engine.containers()
    states = {n: ServiceState.of(c.attrs, engine.topology.networks) for n, c in containers.items()}
    return _ready(engine, containers, states, set(states), {})


def _ready(
    engine: Engine,
    containers: dict[str, Container],
    states: dict[str, ServiceState],
    among: set[str],
    answered: dict[str, str],
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
    answered.update({s: started[s] for s in readiness.answering(pending)})
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
