"""Connecting to Docker Engine, or saying in one line why not; and where the driver is.

The engine is found as the docker CLI finds it (so Compose and the driver always talk
to the same one): ``DOCKER_HOST``, else ``DOCKER_CONTEXT``, else the current context of
``docker context use``. A rootless engine, a remote one and Docker Desktop's are all
reached that way.
"""

from __future__ import annotations

import os
import socket
import weakref

import docker
import docker.errors
from docker.context import ContextAPI
from docker.models.containers import Container

from lab.errors import DockerUnavailable, UsageError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Every API call gets a deadline: a wedged engine ends in an error, not a hang. Longer
# than the longest single call the lab makes (a container's stop, an exec's end).
API_TIMEOUT = 120
# How `send --from docker-host` reaches published ports: `direct` from this process,
# `helper` from a container in the engine's own network namespace; `auto` picks.
PLACE_ENV = "LAB_DOCKER_HOST_VIA"


# The engine's client, and what its SDK raises, under the names the rest of the lab
# uses: only the backends and this folder import the SDK itself.
Client = docker.DockerClient
EngineError = docker.errors.DockerException


def connect() -> docker.DockerClient:
    """A Docker client for the engine the docker CLI would use."""
    where = engine_url()
    ssh = where.startswith("ssh://")  # through the ssh command, as the docker CLI does
    try:
        if os.environ.get("DOCKER_HOST"):
            client = docker.from_env(timeout=API_TIMEOUT, use_ssh_client=ssh)
        else:
            context = ContextAPI.get_context(os.environ.get("DOCKER_CONTEXT"))
            if context is None:
                raise DockerUnavailable(
                    f"Docker context {os.environ.get('DOCKER_CONTEXT')!r} does not exist",
                    "see `docker context ls`",
                )
            client = docker.DockerClient(
                base_url=context.Host or DEFAULT_SOCKET,
                tls=context.TLSConfig or False,
                timeout=API_TIMEOUT,
                use_ssh_client=ssh,
            )
        client.ping()
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise DockerUnavailable(
                f"no permission to use the Docker socket at {where}",
                "add your user to the docker group and log in again, or use rootless Docker "
                "(docs/install.md)",
            ) from None
        raise DockerUnavailable(
            f"Docker Engine is not reachable at {where}",
            "start it (`sudo systemctl start docker`), or point DOCKER_HOST or "
            "`docker context use` at a running one (docs/install.md)",
        ) from None
    return client


def engine_url() -> str:
    """Where the engine is, as the docker CLI would find it (for messages and decisions)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    try:
        context = ContextAPI.get_context(os.environ.get("DOCKER_CONTEXT"))
    except docker.errors.DockerException:
        context = None
    return (context.Host if context is not None else None) or DEFAULT_SOCKET


def beside_engine(client: docker.DockerClient) -> bool:
    """Whether 127.0.0.1 here is the engine's own, where it publishes ports: the engine is
    reached locally (a unix socket, or TCP on loopback) and runs on this very machine (its
    name is this machine's name; a dev container, Codespaces or a Docker Desktop VM has
    another). ``LAB_DOCKER_HOST_VIA`` (direct or helper) decides instead when set."""
    chosen = os.environ.get(PLACE_ENV) or "auto"
    if chosen not in ("auto", "direct", "helper"):
        raise UsageError(f"{PLACE_ENV}={chosen!r}", "use auto, direct or helper")
    if chosen != "auto":
        return chosen == "direct"
    if client not in _BESIDE:
        url = str(client.api.base_url)
        local = url.startswith(_LOCAL)
        _BESIDE[client] = local and engine_here(str(client.info().get("Name", "")))
    return _BESIDE[client]


def engine_here(engine_name: str, here: str | None = None) -> bool:
    """Whether an engine that calls itself ``engine_name`` runs on this machine."""
    return engine_name == (socket.gethostname() if here is None else here)


# How docker-py names an engine reached on this machine: a unix socket, or TCP on loopback.
_LOCAL = (
    "http+docker://localhost",
    "http+docker://localunixsocket",
    "http://127.",
    "http://localhost",
)
_BESIDE: weakref.WeakKeyDictionary[docker.DockerClient, bool] = weakref.WeakKeyDictionary()


def inspected(client: docker.DockerClient, labels: list[str]) -> list[Container]:
    """Every container (running or not) carrying all of ``labels``, inspected one by one.

    The SDK's list() inspects each container it lists, and a container can vanish in
    between (Compose removing it, a crash): such a one is skipped, not an error.
    """
    found = []
    for summary in client.api.containers(all=True, filters={"label": labels}):
        try:
            found.append(client.containers.get(summary["Id"]))
        except docker.errors.NotFound:
            continue
    return found
