"""One lab across several machines: Docker Engines joined in one Docker Swarm
(docs/scale-out.md). ``resolve`` turns what the user gave (``--cluster`` or
``LAB_CLUSTER``) into machines."""

from __future__ import annotations

import subprocess

import docker

from lab.backends.swarm.placement import Machine, parse_machines
from lab.errors import UsageError

ENV = "LAB_CLUSTER"
TEST = "test"  # the test cluster `lab cluster make N` made on this machine


def context_url(name: str) -> str:
    """A Docker context's engine URL, as `docker context inspect` reads it."""
    try:
        out = subprocess.run(
            ["docker", "context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        raise UsageError(f"cannot ask docker about the context {name!r}") from None
    if out.returncode != 0 or not out.stdout.strip():
        raise UsageError(f"no Docker context {name!r}", "see `docker context ls`")
    return out.stdout.strip()


def resolve(spec: str, local: docker.DockerClient | None = None) -> list[Machine]:
    """``test`` (the test cluster made here), or machines as NAME=URL or context names."""
    if spec.strip() == TEST:
        from lab.backends.swarm import machines
        from lab.engine.docker_client import connect

        found = machines.found(local or connect())
        if not found:
            raise UsageError("there is no test cluster", "make one with `lab cluster make 3`")
        return found
    return parse_machines(spec, context_url)
