"""Tier 4: one lab across three machines, on this machine (`lab cluster make 3`).

The cluster is made once for this tier and removed after it, whatever happens; the lab
runs on it under a project of its own, apphost, client and shouthost spread over m1,
m2 and m3. The machines are containers running their own Docker Engine, so every
timing measured here is one kernel's, not a real network's (docs/scale-out.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

import lab as socklab
from lab.backends.swarm import machines
from tests.conftest import engine_for, sigint_as_default

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("LAB_CLUSTER_TEST_PROJECT", "socklab-cluster-lab")
MACHINES = 3
ENV = {
    # The lab's networks are overlays inside the machines' engines; this subnet is theirs.
    # Its published ports are bound in the machines' own namespaces, where nothing else
    # is: the default fixed ports, so that each names one machine.
    "LAB_NET_PREFIX": "10.232.0",
    "LAB_NAME": "",
    "LAB_CLUSTER": "test",
}
STARTED = time.monotonic()


def lab_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`python -m lab ARGS` on the cluster lab, as a user would run it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "-p", PROJECT, *args],
        cwd=ROOT,
        env={**os.environ, **ENV},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_as_default,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return engine_for("cluster")


@pytest.fixture(scope="package")  # gone before the next tier starts: 3 engines weigh
def cluster(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Three machines in one swarm, removed after the session; nothing of them left."""
    machines.remove(docker_client, lambda *a, **k: None)  # a killed run's leftovers
    done = lab_cli("cluster", "make", str(MACHINES), timeout=900)
    try:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        yield [m.name for m in machines.found(docker_client)]
    finally:
        gone = lab_cli("cluster", "remove", timeout=300)
        assert gone.returncode == 0, gone.stderr
        left = [
            *(
                c.name
                for c in docker_client.containers.list(all=True, filters={"label": machines.LABEL})
            ),
            *(n.name for n in docker_client.networks.list(filters={"label": machines.LABEL})),
            *(v.name for v in docker_client.volumes.list(filters={"label": machines.LABEL})),
        ]
        assert left == [], f"the test cluster left {left}"
        print(f"\ncluster tier: {time.monotonic() - STARTED:.0f} s")


@pytest.fixture(scope="package")
def net(cluster: list[str], docker_client: docker.DockerClient) -> Iterator[socklab.Lab]:
    """The lab across the three machines, through the public API."""
    opened = socklab.open(ROOT, project=PROJECT, env=ENV, client=docker_client, cluster="test")
    opened.down()
    opened.up(timeout=300)
    yield opened
    opened.down()
    assert not opened.backend.owned(), f"left behind: {opened.backend.owned()}"
