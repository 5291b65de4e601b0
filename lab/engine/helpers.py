"""Helper containers: short-lived tools that need a capability the lab's services never get.

The services run with no capabilities at all. Capturing frames needs CAP_NET_RAW,
changing a link needs CAP_NET_ADMIN; a helper holds just that one, runs the lab's
own image (so nothing is pulled or installed), joins the network namespace it
works on, and carries the project's label so that `lab down` removes it whatever
happened to the command that started it.
"""

from __future__ import annotations

import json
import logging
import secrets
from contextlib import suppress
from dataclasses import dataclass, replace

import docker.errors
from docker.models.containers import Container

from lab.backends.engine import Engine
from lab.backends.model import PROJECT_LABEL, SERVICE_LABEL
from lab.engine import hardening
from lab.errors import HelperFailed, TimedOut
from lab.names import label
from lab.services.probes.sockscript import Event, Step
from lab.waiting import wait_until

ROLE_LABEL = label("role")
ROLE = "helper"
SESSION_LABEL = label("session")
TARGET_LABEL = label("target")  # the host a helper works on
SESSION = secrets.token_hex(4)  # this process's helpers, whoever else runs some
TIMEOUT = 30.0
log = logging.getLogger("lab")
_started = False  # whether this process started any (so cleanup asks Docker only then)


@dataclass(frozen=True)
class Namespace:
    """Whose network a helper works in: a lab host's, or the Docker host's (``host``)."""

    mode: str  # "host" or "container:<id>"
    label: str  # for names and messages

    @classmethod
    def of_host(cls, lab: Engine, host: str) -> Namespace:
        lab.topology.host_of(host)
        return cls(f"container:{lab.container(host).id}", host)

    @classmethod
    def docker_host(cls) -> Namespace:
        return cls("host", "docker-host")


def labels(lab: Engine, role: str, purpose: str) -> dict[str, str]:
    """The labels of a container the driver starts beside the lab's own.

    The lab's image was built by Compose for one service, and a container inherits
    its image's labels: without an override, every helper would claim to be that
    service, and ``Engine.container("apphost")`` could find a helper instead.
    """
    return {
        PROJECT_LABEL: lab.topology.project,
        SERVICE_LABEL: f"{role}:{purpose}",
        ROLE_LABEL: role,
        SESSION_LABEL: SESSION,
        label("purpose"): purpose,
    }


def image(lab: Engine) -> str:
    """The lab's own image, taken from a running host (it has python3 and services/).

    By id, not by tag: a later build (a rebuild, another checkout of the lab on the
    same machine) may have moved the tag to an image the lab does not run.
    """
    return str(lab.container(lab.topology.client.name).attrs["Image"])


def start(
    lab: Engine,
    purpose: str,
    where: Namespace,
    argv: list[str],
    capability: str | None,
    *,
    also: tuple[str, ...] = (),
    lasting: bool = False,
    pids: bool = False,
) -> Container:
    """A helper left running (the caller removes it, or `lab down` does).

    Its name is unique: two commands may work on the same host at once. A
    ``lasting`` one outlives the command that started it (a link impairment:
    `lab link HOST reset` ends it), so it is not this process's to clean up.
    ``also``: further capabilities it needs; ``pids``: join the host's PID namespace
    too (to trace its processes), not only its network.
    """
    global _started
    _started = True
    name = f"{lab.topology.project}-{purpose}-{where.label}-{secrets.token_hex(3)}"
    granted = [c for c in (capability, *also) if c]
    log.info("helper %s: %s (%s)", name, " ".join(argv), ", ".join(granted) or "no capability")
    tags = labels(lab, ROLE, purpose) | {TARGET_LABEL: where.label}
    if lasting:
        del tags[SESSION_LABEL]
    return lab.client_for(where.label).containers.run(
        image(lab),
        argv,
        name=name,
        detach=True,
        network_mode=where.mode,
        pid_mode=where.mode if pids else None,
        **hardening.helper(*granted).run_kwargs(),
        labels=tags,
    )


def run_script(
    lab: Engine, where: Namespace, steps: list[Step], t0: float, timeout: float = TIMEOUT
) -> list[Event]:
    """A socket script (services/probes/sockscript.py) in a helper in ``where``'s network
    namespace, with no capability at all: how the driver sends from a namespace it is not
    in (the Docker host's, when the driver runs in a container or on another machine).
    The helper's clock is the engine's kernel's, as every lab host's is."""
    argv = ["python3", "-m", "services.probes.sockscript", "--t0", repr(t0), json.dumps(steps)]
    container = start(lab, "script", where, argv, None)
    try:
        code = int(container.wait(timeout=timeout).get("StatusCode", 1))
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
        errors = container.logs(stdout=False, stderr=True).decode(errors="replace")
    finally:
        with suppress(docker.errors.NotFound):
            container.remove(force=True)
    if code != 0:
        raise HelperFailed(container.name or "script", argv[:4], code, errors)
    return [replace(Event(**e), host=where.label) for e in json.loads(out)]


def wait_ready(container: Container, word: str, timeout: float = 15.0) -> None:
    """Until the helper says ``word`` in its log; HelperFailed if it stops first, or the
    deadline passes."""

    def ready() -> bool:
        logs = container.logs().decode(errors="replace")
        if word in logs:
            return True
        container.reload()
        if container.status in ("exited", "dead"):
            raise HelperFailed(container.name or "helper", [], 1, logs)
        return False

    try:
        wait_until(ready, timeout, f"helper {container.name}")
    except TimedOut:
        raise HelperFailed(
            container.name or "helper", [], 1, f"not ready within {timeout:.0f} s"
        ) from None


def find(lab: Engine, purpose: str, target: str) -> list[str]:
    """The ids of the helpers of one purpose working on one host (or the Docker host)."""
    wanted = [
        f"{PROJECT_LABEL}={lab.topology.project}",
        f"{ROLE_LABEL}={ROLE}",
        f"{label('purpose')}={purpose}",
        f"{TARGET_LABEL}={target}",
    ]
    return [
        c["Id"]
        for client in lab.clients()
        for c in client.api.containers(all=True, filters={"label": wanted})
    ]


def run(lab: Engine, purpose: str, where: Namespace, argv: list[str], capability: str) -> str:
    """Run one command in a helper and return its output; HelperFailed if it fails."""
    container = start(lab, purpose, where, argv, capability)
    try:
        code = int(container.wait(timeout=TIMEOUT).get("StatusCode", 1))
        output = container.logs().decode(errors="replace")
    finally:
        with suppress(docker.errors.NotFound):
            container.remove(force=True)
    if code != 0:
        raise HelperFailed(container.name or purpose, argv, code, output)
    return output


def remove_mine(lab: Engine) -> list[str]:
    """The helpers this process started and has not removed: a Ctrl-C can land between
    Docker creating one and its owner holding it. The CLI calls this on every exit."""
    return remove_all(lab, [f"{SESSION_LABEL}={SESSION}"]) if _started else []


def remove_all(lab: Engine, only: list[str] | None = None) -> list[str]:
    """Every helper of this project, whatever it was for (`lab chaos restore`)."""
    removed = []
    labels = [f"{PROJECT_LABEL}={lab.topology.project}", f"{ROLE_LABEL}={ROLE}", *(only or [])]
    filters = {"label": labels}
    for client in lab.clients():
        for summary in client.api.containers(all=True, filters=filters):
            with suppress(docker.errors.NotFound):
                client.api.remove_container(summary["Id"], force=True)
                removed.append(summary["Names"][0].lstrip("/"))
    return removed
