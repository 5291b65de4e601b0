"""Helper containers: short-lived tools that need a capability the lab's services never get.

The services run with no capabilities at all. Capturing frames needs CAP_NET_RAW,
changing a link needs CAP_NET_ADMIN; a helper holds just that one, runs the lab's
own image (so nothing is pulled or installed), joins the network namespace it
works on, and carries the project's label so that `lab down` removes it whatever
happened to the command that started it.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import tarfile
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import docker.errors
from docker.models.containers import Container
from docker.types import LogConfig, Mount

from lab.backends.model import PROJECT_LABEL, SERVICE_LABEL
from lab.engine import hardening
from lab.engine.docker_client import inspected
from lab.errors import HelperFailed, TimedOut
from lab.names import label
from lab.services.probes.sockscript import Event, Step
from lab.waiting import wait_until

if TYPE_CHECKING:
    from lab.backends.engine import Engine

ROLE_LABEL = label("role")
ROLE = "helper"
OWNER_LABEL = label("owner")  # which driver process started it
TARGET_LABEL = label("target")  # the host a helper works on
OWNER = secrets.token_hex(4)  # this process's helpers, whoever else runs some
TIMEOUT = 30.0
log = logging.getLogger("lab")
_started = False  # whether this process started any (so cleanup asks Docker only then)


@dataclass(frozen=True)
class Namespace:
    """Whose network a helper works in: a lab host's, or the Docker host's (``host``)."""

    mode: str  # "host" or "container:<id>"
    label: str  # for names and messages

    @classmethod
    def of_host(cls, backend: Engine, host: str) -> Namespace:
        backend.topology.host_of(host)
        return cls(f"container:{backend.container(host).id}", host)

    @classmethod
    def docker_host(cls) -> Namespace:
        return cls("host", "docker-host")


class Helper:
    """A helper as the code that started it sees it: its output, whether it ended, and
    its removal (one already gone is removed). Nothing of the engine leaks out."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self.name = container.name or "helper"
        self._attached: Iterator[tuple[bytes | None, bytes | None]] | None = None

    def output(self, stdout: bool = True, stderr: bool = True) -> str:
        raw = self._container.logs(stdout=stdout, stderr=stderr)
        return bytes(raw).decode(errors="replace")

    def ended(self) -> bool:
        try:
            self._container.reload()
        except docker.errors.NotFound:
            return True
        return self._container.status in ("exited", "dead")

    def exit_code(self) -> int | None:
        """Its exit status once it ended (None while it runs, or when it is gone)."""
        if not self.ended():
            return None
        with suppress(docker.errors.NotFound):
            return int(self._container.attrs["State"].get("ExitCode", 1))
        return None

    def wait(self, timeout: float) -> int:
        """Until it ends; its exit status."""
        return int(self._container.wait(timeout=timeout).get("StatusCode", 1))

    def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds (one already gone: nothing)."""
        with suppress(docker.errors.APIError):
            self._container.stop(timeout=timeout)

    def read_file(self, path: str) -> bytes | None:
        """A file it wrote (None: there is none)."""
        try:
            stream, _ = self._container.get_archive(path)
        except docker.errors.NotFound:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.extractfile(PurePosixPath(path).name)
            return None if member is None else member.read()

    def remove(self) -> None:
        if self._attached is not None:
            with suppress(Exception):  # the stream's own connection, however it ended
                self._attached.close()  # type: ignore[attr-defined]
        with suppress(docker.errors.NotFound):
            self._container.remove(force=True, v=True)  # its anonymous volume too

    def kill(self) -> None:
        """SIGKILL, and until it has died."""
        self._container.kill()
        self._container.wait(timeout=30)

    def start(self) -> None:
        """Start it again, as it was (a process after a power cut)."""
        self._container.start()

    def inspect(self) -> dict[str, Any]:
        """The container as the engine reports it now (for checks of its settings)."""
        self._container.reload()
        return dict(self._container.attrs)

    def environment(self) -> list[str]:
        return list(self._container.attrs["Config"]["Env"] or [])

    def command(self) -> list[str]:
        return list(self._container.attrs["Config"]["Cmd"] or [])

    def stream(self) -> Iterator[bytes]:
        """What it writes to stdout, as it writes it, until it ends or is removed (from
        its first byte if it was started ``streamed``)."""
        try:
            attached = self._attached or self._container.attach(
                stdout=True, stderr=False, stream=True, demux=True
            )
            for chunk, _ in attached:
                yield chunk or b""
        except (docker.errors.APIError, OSError):
            return


def labels(backend: Engine, role: str, purpose: str) -> dict[str, str]:
    """The labels of a container the driver starts beside the lab's own.

    The lab's image was built by Compose for one service, and a container inherits
    its image's labels: without an override, every helper would claim to be that
    service, and ``Engine.container("apphost")`` could find a helper instead.
    """
    return {
        PROJECT_LABEL: backend.topology.project,
        SERVICE_LABEL: f"{role}:{purpose}",
        ROLE_LABEL: role,
        OWNER_LABEL: OWNER,
        label("purpose"): purpose,
    }


def image(backend: Engine) -> str:
    """The lab's own image, taken from a running host (it has python3 and services/).

    By id, not by tag: a later build (a rebuild, another checkout of the lab on the
    same machine) may have moved the tag to an image the lab does not run.
    """
    return str(backend.container(backend.topology.client.name).attrs["Image"])


def start(
    backend: Engine,
    purpose: str,
    where: Namespace,
    argv: list[str],
    capability: str | None,
    *,
    also: tuple[str, ...] = (),
    lasting: bool = False,
    pids: bool = False,
    streamed: bool = False,
) -> Helper:
    """A helper left running (the caller removes it, or `lab down` does).

    Its name is unique: two commands may work on the same host at once. A
    ``lasting`` one outlives the command that started it (a link impairment:
    `lab link HOST reset` ends it), so it is not this process's to clean up.
    ``also``: further capabilities it needs; ``pids``: join the host's PID namespace
    too (to trace its processes), not only its network; ``streamed``: its standard
    output is read with ``stream()``, from its first byte.
    """
    global _started
    _started = True
    name = f"{backend.topology.project}-{purpose}-{where.label}-{secrets.token_hex(3)}"
    granted = [c for c in (capability, *also) if c]
    log.info("helper %s: %s (%s)", name, " ".join(argv), ", ".join(granted) or "no capability")
    tags = labels(backend, ROLE, purpose) | {TARGET_LABEL: where.label}
    if lasting:
        del tags[OWNER_LABEL]
    settings: dict[str, Any] = {
        "name": name,
        "network_mode": where.mode,
        "pid_mode": where.mode if pids else None,
        **hardening.helper(*granted).run_kwargs(),
        "labels": tags,
    }
    containers = backend.client_for(where.label).containers
    if not streamed:
        return Helper(containers.run(image(backend), argv, detach=True, **settings))
    # Attached before it starts, as `docker run` does: nothing it writes first is missed
    # (replaying its log instead would not do: Docker's log keeps lines of text), and
    # that log, which copies all it writes, is capped, or a long capture fills the disk.
    capped = LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"})
    container = containers.create(image(backend), argv, log_config=capped, **settings)
    helper = Helper(container)
    try:
        helper._attached = container.attach(stdout=True, stderr=False, stream=True, demux=True)
        container.start()
    except BaseException:
        helper.remove()
        raise
    return helper


def run_script(
    backend: Engine, where: Namespace, steps: list[Step], t0: float, timeout: float = TIMEOUT
) -> list[Event]:
    """A socket script (services/probes/sockscript.py) in a helper in ``where``'s network
    namespace, with no capability at all: how the driver sends from a namespace it is not
    in (the Docker host's, when the driver runs in a container or on another machine).
    The helper's clock is the engine's kernel's, as every lab host's is."""
    argv = ["python3", "-m", "services.probes.sockscript", "--t0", repr(t0), json.dumps(steps)]
    helper = start(backend, "script", where, argv, None)
    try:
        code = helper.wait(timeout)
        out = helper.output(stderr=False)
        errors = helper.output(stdout=False)
    finally:
        helper.remove()
    if code != 0:
        raise HelperFailed(helper.name, argv[:4], code, errors)
    return [replace(Event(**e), host=where.label) for e in json.loads(out)]


def wait_ready(helper: Helper, word: str, timeout: float = 15.0) -> None:
    """Until the helper says ``word`` in its log; HelperFailed if it stops first, or the
    deadline passes."""

    def ready() -> bool:
        logs = helper.output()
        if word in logs:
            return True
        if helper.ended():
            raise HelperFailed(helper.name, [], 1, logs)
        return False

    try:
        wait_until(ready, timeout, f"helper {helper.name}")
    except TimedOut:
        raise HelperFailed(helper.name, [], 1, f"not ready within {timeout:.0f} s") from None


def find(backend: Engine, purpose: str, target: str) -> list[Helper]:
    """The helpers of one purpose working on one host (or the Docker host)."""
    wanted = [
        f"{PROJECT_LABEL}={backend.topology.project}",
        f"{ROLE_LABEL}={ROLE}",
        f"{label('purpose')}={purpose}",
        f"{TARGET_LABEL}={target}",
    ]
    return [Helper(c) for client in backend.clients() for c in inspected(client, wanted)]


def run(backend: Engine, purpose: str, where: Namespace, argv: list[str], capability: str) -> str:
    """Run one command in a helper and return its output; HelperFailed if it fails."""
    helper = start(backend, purpose, where, argv, capability)
    try:
        code = helper.wait(TIMEOUT)
        output = helper.output()
    finally:
        helper.remove()
    if code != 0:
        raise HelperFailed(helper.name, argv, code, output)
    return output


def remove_mine(backend: Engine) -> list[str]:
    """The helpers this process started and has not removed: a Ctrl-C can land between
    Docker creating one and its owner holding it. The CLI calls this on every exit."""
    return remove_all(backend, [f"{OWNER_LABEL}={OWNER}"]) if _started else []


def remove_all(backend: Engine, only: list[str] | None = None) -> list[str]:
    """Every helper of this project, whatever it was for (`lab chaos restore`)."""
    removed = []
    labels = [f"{PROJECT_LABEL}={backend.topology.project}", f"{ROLE_LABEL}={ROLE}", *(only or [])]
    filters = {"label": labels}
    for client in backend.clients():
        for summary in client.api.containers(all=True, filters=filters):
            with suppress(docker.errors.NotFound):
                client.api.remove_container(summary["Id"], force=True)
                removed.append(summary["Names"][0].lstrip("/"))
    return removed


def start_process(
    backend: Engine,
    host: str,
    name: str,
    argv: list[str],
    purpose: str,
    *,
    environment: dict[str, str] | None = None,
    data_volume: bool = False,
    data_folder: Path | None = None,
) -> Helper:
    """A process of the lab's image in ``host``'s namespaces, hardened as Compose starts
    every lab process (hardening.PROCESS), labelled so that its owner, or `lab down`,
    removes it. ``name`` is its container's whole name: one left over by a driver killed
    outright is removed first. ``data_volume``: an anonymous volume at /data, removed
    with it; ``data_folder``: a folder of the Docker host bound there instead."""
    engine = backend.client_for(host)
    with suppress(docker.errors.NotFound):
        engine.containers.get(name).remove(force=True)
    namespace = f"container:{backend.container(host).id}"
    container = engine.containers.run(
        image(backend),
        argv,
        name=name,
        detach=True,
        network_mode=namespace,
        pid_mode=namespace,
        **hardening.PROCESS.run_kwargs(),
        mounts=[Mount("/data", None, type="volume")] if data_volume else None,
        volumes={str(data_folder): {"bind": "/data", "mode": "rw"}} if data_folder else None,
        environment=environment or {},
        labels=labels(backend, ROLE, purpose),
    )
    return Helper(container)
