"""Connecting to Docker Engine, or saying in one line why not."""

from __future__ import annotations

import os

import docker
import docker.errors

from lab.errors import DockerUnavailable

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Every API call gets a deadline: a wedged engine ends in an error, not a hang. Longer
# than the longest single call the lab makes (a container's stop, an exec's end).
API_TIMEOUT = 120


def connect() -> docker.DockerClient:
    """A Docker client (DOCKER_HOST, contexts' environment, as the docker CLI reads them)."""
    try:
        client = docker.from_env(timeout=API_TIMEOUT)
        client.ping()
    except docker.errors.DockerException as exc:
        text = str(exc)
        if "Permission denied" in text or "PermissionError" in text:
            raise DockerUnavailable(
                "no permission to use the Docker socket",
                "run as root, or add your user to the docker group and log in again",
            ) from None
        raise DockerUnavailable(
            f"Docker Engine is not reachable at {os.environ.get('DOCKER_HOST', DEFAULT_SOCKET)}",
            "start it (`sudo systemctl start docker` or `sudo dockerd &`) or run `make setup`",
        ) from None
    return client
