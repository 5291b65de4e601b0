"""Named labs side by side: started at once without clashing, listed, isolated from each
other (real traffic, and a capture on the other lab's bridge), faults kept to their lab.

Two small labs only: `lab bench density` is where many are measured.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

import lab as socklab
from lab.backends.model import PROJECT_LABEL
from lab.engine import named
from lab.packets import dissect
from lab.traffic import clients
from lab.traffic.script import Script
from tests.docker.conftest import PROJECT, ROOT, run_lab_cli, start_lab_cli

pytestmark = pytest.mark.docker

# Names of this run's own (the test project's name keeps two checkouts apart).
A, B = f"{PROJECT}-a".removeprefix("socklab-"), f"{PROJECT}-b".removeprefix("socklab-")


@pytest.fixture(scope="module")
def pair(docker_client: docker.DockerClient) -> Iterator[tuple[socklab.Lab, socklab.Lab]]:
    """Two named labs, started by two `lab up --name` processes at the same moment."""
    for name in (A, B):
        socklab.open(ROOT, name=name, client=docker_client).down()
    ups = [start_lab_cli("up", "--name", name) for name in (A, B)]
    try:
        for proc in ups:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            assert "lab is up" in out
        yield (
            socklab.open(ROOT, name=A, client=docker_client),
            socklab.open(ROOT, name=B, client=docker_client),
        )
    finally:
        for proc in ups:
            if proc.poll() is None:
                proc.kill()
        for name in (A, B):
            done = run_lab_cli("down", "--name", name)
            assert done.returncode == 0, done.stderr
        left = docker_client.containers.list(all=True, filters={"label": f"{named.NAME_LABEL}={A}"})
        assert left == []


def record(net: socklab.Lab) -> named.Record:
    found = named.find(net.backend.client, net.name or "")
    assert found is not None
    return found


def test_labs_started_at_once_get_their_own_subnet_ports_and_project(
    pair: tuple[socklab.Lab, socklab.Lab],
) -> None:
    a, b = (record(net) for net in pair)
    assert (a.project, b.project) == (f"socklab-class-{A}", f"socklab-class-{B}")
    subnets = [ipaddress.IPv4Network(r.subnet) for r in (a, b)]
    assert not subnets[0].overlaps(subnets[1])
    assert all(s.subnet_of(ipaddress.IPv4Network("10.210.0.0/16")) for s in subnets)
    assert set(a.ports) == {"http", "db", "tcp-shout", "udp-shout"}
    assert not set(a.ports.values()) & set(b.ports.values())
    for net, rec in zip(pair, (a, b), strict=True):
        assert net.topology.subnet == rec.subnet
        assert net.topology.hosts["apphost"].ip == rec.subnet.replace(".0/24", ".10")
        assert net.published_port("http", 80) == rec.ports["http"]
        assert all(s.status == "running" for s in net.states().values())
        assert len(net.states()) == len(net.topology.services)
    # No other Docker network shares a subnet with either.
    for n in pair[0].backend.client.api.networks():
        for config in (n.get("IPAM") or {}).get("Config") or []:
            if n["Labels"] and n["Labels"].get(PROJECT_LABEL) in (a.project, b.project):
                continue
            theirs = ipaddress.ip_network(config["Subnet"], strict=False)
            assert not any(theirs.overlaps(s) for s in subnets), n["Name"]


def test_ls_lists_both_with_owner_subnet_ports_state_and_age(
    pair: tuple[socklab.Lab, socklab.Lab],
) -> None:
    done = run_lab_cli("ls", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    for net in pair:
        rec = record(net)
        row = rows[rec.name]
        assert (row["subnet"], row["ports"], row["state"]) == (rec.subnet, rec.ports, "up")
        assert row["owner"] == rec.owner
        assert 0 <= row["age_s"] < 3600
    table = run_lab_cli("ls")
    assert A in table.stdout
    assert B in table.stdout
    status = run_lab_cli("status", "--name", A)
    assert status.returncode == 0, status.stderr
    assert f"127.0.0.1:{record(pair[0]).ports['http']}" in status.stdout
    by_env = run_lab_cli("send", "tcp", "hello", env={"LAB_NAME": B})
    assert by_env.returncode == 0, by_env.stderr
    assert f"127.0.0.1:{record(pair[1]).ports['tcp-shout']}" in by_env.stdout


def test_nothing_of_one_lab_is_reachable_from_the_others_client(
    pair: tuple[socklab.Lab, socklab.Lab], tmp_path: Path
) -> None:
    a, b = pair
    b_hosts = [h.ip for h in b.topology.hosts.values()]
    gateway = a.gateway()
    probe = Script()
    for i, ip in enumerate(b_hosts):
        probe.tcp(f"t{i}", timeout=1.5).connect(ip, 80)
        probe.udp(f"u{i}", timeout=1.5).connect(ip, 8080).send("anyone?").recv()
    # b's published ports are on the Docker host's loopback, not on a's gateway
    probe.tcp("published", timeout=1.5).connect(gateway, record(b).ports["http"])
    b_apphost_id = str(b.backend.container("apphost").id)[:12]
    with b.capture(tmp_path / "b.pcap") as seen_by_b, a.capture(tmp_path / "a.pcap") as seen_by_a:
        events = a.client.run(probe)
        # By name: Docker's DNS answers each network alone.
        names = a.client.run(
            Script()
            .resolve(f"socklab-class-{B}-apphost-1")
            .resolve(b_apphost_id)
            .resolve("apphost")
        )
        # ...and b's own client reaches b (so b's capture was listening).
        own = b.client.run(clients.tcp_script("tcp-shout", 8080, "still here"))
    for i, ip in enumerate(b_hosts):
        outcome = events.first(f"t{i}", "connect").outcome
        # Dropped on the way (timeout), or refused by a router: never answered by b's
        # host (ok, or its kernel's RST: ECONNREFUSED).
        assert outcome not in ("ok", "ECONNREFUSED"), (ip, outcome, events.of(f"t{i}"))
        assert events.of(f"u{i}").failure() != "", (ip, events.of(f"u{i}"))
    assert events.first("published", "connect").outcome in ("ECONNREFUSED", "timeout")
    outcomes = [e.outcome for e in names if e.op == "resolve"]
    assert outcomes[0].startswith("unresolved")
    assert outcomes[1].startswith("unresolved")
    assert outcomes[2] == "ok"
    assert [e.data for e in names if e.op == "resolve"][2] == a.topology.hosts["apphost"].ip
    assert clients.reply_text("tcp", own) == "STILL HERE"

    a_net = ipaddress.ip_network(a.topology.subnet)
    in_b = dissect.read(seen_by_b.path)
    from_a = [f for f in in_b if f.src and ipaddress.ip_address(f.src) in a_net]
    assert from_a == [], f"frames from lab {A} on lab {B}'s bridge: {from_a}"
    assert any(f.payload == b"still here" for f in in_b)  # b's own traffic was captured
    # The probes really left a's client: its SYNs to b's addresses are on a's bridge.
    in_a = dissect.read(seen_by_a.path)
    assert {f.dst for f in in_a if f.dst in b_hosts} == set(b_hosts)


def test_a_fault_and_an_impairment_in_one_lab_change_nothing_in_the_other(
    pair: tuple[socklab.Lab, socklab.Lab],
) -> None:
    a, b = pair
    killed = run_lab_cli("chaos", "kill", "db", "--name", A)
    assert killed.returncode == 0, killed.stderr
    linked = run_lab_cli("link", "shouthost", "loss", "100%", "--name", A)
    assert linked.returncode == 0, linked.stderr
    try:
        assert a.states()["db"].status == "exited"
        assert all(s.status == "running" for s in b.states().values())
        assert b.send("db", "PING").reply == "PONG"
        assert a.send("db", "PING").error  # refused: a's db is down
        assert b.send("udp", "b still answers").reply == "B STILL ANSWERS"
        assert a.send("udp", "lost").error  # every frame to a's shouthost is dropped
        b.wait_healthy(timeout=30)
    finally:
        restored = run_lab_cli("chaos", "restore", "--name", A)
        assert restored.returncode == 0, restored.stderr
    assert a.send("db", "PING").reply == "PONG"
    assert a.send("udp", "back").reply == "BACK"


def test_bench_density_on_two_labs_measures_each_checkpoint_and_leaves_none(
    pair: tuple[socklab.Lab, socklab.Lab], tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    done = run_lab_cli("bench", "density", "--tiny", "--out", str(tmp_path), timeout=900)
    assert done.returncode == 0, done.stderr
    (bench,) = json.loads((tmp_path / "latest.json").read_text())["benchmarks"]
    points = bench["data"]["points"]
    assert [p["k"] for p in points] == [1, 2]
    assert [p["dispatch_passed"] for p in points] == [1, 2]
    assert bench["data"]["largest_k"] == 2
    for p in points:
        assert 20 < p["memory_mib_mean"] <= p["memory_mib_max"] < 256 * 7
        assert 0 < p["anon_mib_mean"] < p["memory_mib_mean"]
        assert 0 <= p["cpu_pct_per_lab"] <= p["cpu_with_shims_pct_per_lab"]
        assert p["up_s_mean"] > 0
    left = [p for p in named.projects(docker_client) if "density-" in p]
    assert left == []
    assert {r.name for r in map(record, pair)} <= set(named.records(docker_client))  # untouched


def test_down_all_removes_every_named_lab_and_nothing_else(
    pair: tuple[socklab.Lab, socklab.Lab], docker_client: docker.DockerClient
) -> None:
    """Last in this file: it takes the pair down (the fixture's own downs then find nothing)."""
    ours = {f"socklab-class-{A}", f"socklab-class-{B}"}
    if set(named.projects(docker_client)) - ours or os.environ.get("LAB_KEEP_OTHER_LABS"):
        pytest.skip("other named labs are on this machine: `lab down --all` would remove them")
    done = run_lab_cli("down", "--all")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == [
        f"lab {name}: removed 7 containers, 1 networks, 1 volumes" for name in sorted((A, B))
    ]
    assert named.projects(docker_client) == []
    for project in ours:
        label: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={project}"}
        assert docker_client.containers.list(all=True, filters=label) == []
        assert docker_client.networks.list(filters=label) == []
        assert docker_client.volumes.list(filters=label) == []
    assert run_lab_cli("ls").stdout.startswith("no named labs")
