"""A socket's owner is named by what the kernel knows: the owning process's cgroup names its
container, and so its Compose service. An override adds a third host with two processes of
a user's own that carry no LAB_SERVICE; `socklab status` names both, and `pid_of` finds
each from its cgroup, in agreement with the port table it no longer falls back to.

The lab here is one of its own (project, subnet, ports), removed at the end."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

import lab as socklab
from lab.services.probes.porttable import OWN
from tests.docker.conftest import ENV, PROJECT, ROOT, open_lab, run_lab_cli

OWN_PROJECT = f"{PROJECT}-owners"
OWN_ENV = {**ENV, "LAB_NET_PREFIX": os.environ.get("LAB_TEST_OWNERS_NET_PREFIX", "10.203.85")}
PROCESS = """
  own-{proto}:
    image: ${{LAB_SERVICES_IMAGE:-socklab-services:latest}}
    pull_policy: never
    user: "10001:10001"
    read_only: true
    cap_drop: [ALL]
    network_mode: "service:thirdhost"
    pid: "service:thirdhost"
    command: ["python3", "/opt/own/echo.py", "{proto}", "{port}"]
    volumes: ["./examples/servers/echo.py:/opt/own/echo.py:ro"]
    labels: {{socklab.ports: "{port}/{proto} echo"}}
    depends_on: {{thirdhost: {{condition: service_started}}}}
"""
OVERRIDE = (
    """
services:
  thirdhost:
    image: ${LAB_SERVICES_IMAGE:-socklab-services:latest}
    pull_policy: never
    user: "10001:10001"
    read_only: true
    cap_drop: [ALL]
    init: true
    command: ["sleep", "infinity"]
    healthcheck: {test: ["CMD", "true"], interval: 1s, retries: 30}
    networks:
      labnet: {ipv4_address: "${LAB_NET_PREFIX:-10.203.0}.30"}
"""
    + PROCESS.format(proto="tcp", port=7000)
    + PROCESS.format(proto="udp", port=7001)
)
# A listener started in the host's own container, as a user's shell would.
LISTEN = "import socket,time; s=socket.socket(); s.bind(('', {port})); s.listen(); time.sleep(20)"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    override = tmp_path_factory.mktemp("owners") / "override.yaml"
    override.write_text(OVERRIDE)
    # Relative paths are the first file's folder's: examples/servers/echo.py of ROOT.
    return ROOT / "compose.yaml", override


@pytest.fixture(scope="module")
def third(docker_client: docker.DockerClient, files: tuple[Path, ...]) -> Iterator[socklab.Lab]:
    net = open_lab(docker_client, OWN_PROJECT, OWN_ENV, files)
    net.down()
    net.up(timeout=180)
    yield net
    net.down()
    assert not net.backend.owned(), f"left behind: {net.backend.owned()}"


def test_status_names_the_owners_from_their_cgroups(
    third: socklab.Lab, files: tuple[Path, ...]
) -> None:
    for process in ("own-tcp", "own-udp"):
        env = third.backend.container(process).attrs["Config"]["Env"] or []
        assert not [v for v in env if v.startswith("LAB_SERVICE=")], env  # nothing to read
    flags = [arg for f in files for arg in ("-f", str(f))]
    shown = run_lab_cli(*flags, "-p", OWN_PROJECT, "status", "--json", env=OWN_ENV)
    assert shown.returncode == 0, shown.stderr
    host = next(h for h in json.loads(shown.stdout) if h["host"] == "thirdhost")
    owners = {(p["protocol"], p["port"]): p["service"] for p in host["ports"] if p["pid"]}
    assert owners == {("tcp", 7000): "own-tcp", ("udp", 7001): "own-udp"}


def test_pid_of_reads_the_cgroup_and_agrees_with_the_port_table(third: socklab.Lab) -> None:
    backend = third.backend
    table = {(r.protocol, r.port): r for r in backend.port_table("thirdhost")}
    for process, key in (("own-tcp", ("tcp", 7000)), ("own-udp", ("udp", 7001))):
        pid = backend.pid_of(process)
        (found,) = [p for p in backend.processes_on("thirdhost") if p.pid == pid]
        assert found.container == backend.container(process).id
        assert table[key].pid == pid  # two readings of /proc, one from fds, one from cgroups


@pytest.mark.parametrize(("environment", "named"), [({}, ""), ({"LAB_SERVICE": "mine"}, "mine")])
def test_a_process_of_the_host_itself_is_named_only_by_lab_service(
    third: socklab.Lab, environment: dict[str, str], named: str
) -> None:
    port = 7100 + len(environment)
    host = third.backend.container("thirdhost")
    host.exec_run(["python3", "-c", LISTEN.format(port=port)], environment=environment, detach=True)
    deadline = time.monotonic() + 10
    while not (rows := [r for r in third.backend.port_table("thirdhost") if r.port == port]):
        assert time.monotonic() < deadline, f"nothing listened on {port}"
        time.sleep(0.1)
    (row,) = rows
    assert (row.service, row.command.split()[:2]) == (named, ["python3", "-c"])
    # The reader's own container: its id (cgroup v1), or its root (v2's private namespace).
    assert row.container in (host.id, OWN)
