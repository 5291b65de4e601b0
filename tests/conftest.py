"""Marks each test with its tier, from the folder it lives in."""

from __future__ import annotations

import signal
from pathlib import Path

import docker
import docker.errors
import pytest
from hypothesis import settings

# Property tests the same on every run (a seed per test, not per run), and no deadline per
# example: a loaded CI machine makes a 200 ms example slow, not wrong.
settings.register_profile("lab", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("lab")

TIERS = {
    "pure": pytest.mark.pure,
    "local": pytest.mark.local,
    "docker": pytest.mark.docker,
    "cluster": pytest.mark.cluster,
    "installed": pytest.mark.installed,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(TIERS[tier])


def sigint_as_default() -> None:
    """For subprocesses that are sent Ctrl-C: a shell starts a background job with SIGINT
    ignored and a child inherits that, so the child under test gets it back at its default
    (a `make test &` from a script would otherwise test the caller's shell, not the lab)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def engine_for(tier: str) -> docker.DockerClient:
    """The Docker Engine a tier runs on; without one the tier fails loudly, never skips."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"the {tier} tier needs a running Docker Engine: {exc}", pytrace=False)
    return client
