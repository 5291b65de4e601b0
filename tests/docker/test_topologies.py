"""Topologies of one's own, on the real engine: the files resolve as Compose resolves them; a
host with two processes of a student's own added by an override works with every command;
two networks joined by a router host route, and a capture shows the hop.

Each topology here is a lab of its own (project, subnet, ports), removed at the end."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import jsonschema
import pytest

import lab as socklab
from lab.topology import from_config
from tests.docker.conftest import ROOT, open_lab, run_lab_cli

SCHEMA = json.loads((ROOT / "lab/experiments/result.schema.json").read_text())
EXTRA = ("compose.yaml", "examples/topologies/extra-host.yaml")
EXTRA_PROJECT = "socklab-extra"
EXTRA_ENV = {
    "LAB_NET_PREFIX": "10.203.80",
    "LAB_HTTP_PORT": "",
    "LAB_DB_PORT": "",
    "LAB_TCP_SHOUT_PORT": "",
    "LAB_UDP_SHOUT_PORT": "",
}
ROUTER = ("examples/topologies/router/compose.yaml",)
ROUTER_PROJECT = "socklab-router-test"
ROUTER_ENV = {"LAB_ROUTER_NET": "10.205"}


def cli(
    project: str, files: tuple[str, ...], env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    flags = [arg for f in files for arg in ("-f", f)]
    return run_lab_cli(*flags, "-p", project, *args, env=env, timeout=timeout)


def test_the_project_files_resolve_to_the_recorded_topology() -> None:
    """The pure tier's fixture is what Compose makes of compose.yaml today."""
    fixture = json.loads((ROOT / "tests/pure/fixtures/compose/default.json").read_text())
    defaults = {  # as the fixture was recorded: no setting of the user's in the way
        "COMPOSE_PROJECT_NAME": "socklab",
        "LAB_NET_PREFIX": "10.203.0",
        "LAB_HTTP_PORT": "8000",
        "LAB_DB_PORT": "6379",
        "LAB_TCP_SHOUT_PORT": "8080",
        "LAB_UDP_SHOUT_PORT": "8080",
        "LAB_BIND_ADDRESS": "127.0.0.1",
    }
    real = socklab.open(ROOT, env=defaults).backend.compose.config()
    # What is built, and from where, depends on the checkout's folder and its .env.
    assert replace(from_config(real), builds=()) == replace(from_config(fixture), builds=())
    assert [b.service for b in from_config(real).builds] == ["apphost"]


@pytest.fixture(scope="module")
def extra(docker_client: docker.DockerClient) -> Iterator[socklab.Lab]:
    net = open_lab(docker_client, EXTRA_PROJECT, EXTRA_ENV, tuple(ROOT / f for f in EXTRA))
    net.down()
    net.up(timeout=180)
    yield net
    net.down()
    assert not net.backend.owned(), f"left behind: {net.backend.owned()}"


def extra_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return cli(EXTRA_PROJECT, EXTRA, EXTRA_ENV, *args, timeout=timeout)


def test_an_added_host_and_its_own_processes_show_in_status(extra: socklab.Lab) -> None:
    shown = extra_cli("status", "--json")
    assert shown.returncode == 0, shown.stderr
    hosts = {h["host"]: h for h in json.loads(shown.stdout)}
    echo = hosts["echohost"]
    assert echo["ip"] == "10.203.80.30"
    owners = {(p["protocol"], p["port"]): p["command"] for p in echo["ports"] if p["pid"]}
    assert owners == {
        ("tcp", 7000): "python3 /opt/own/echo.py tcp 7000",
        ("udp", 7001): "python3 /opt/own/echo.py udp 7001",
    }
    assert [p["service"] for p in echo["processes"]] == ["echo-tcp", "echo-udp"]
    assert all(p["bound_host_port"] for p in echo["published"])  # Docker chose free ports


@pytest.mark.parametrize("origin", ["docker-host", "client"])
def test_send_reaches_a_students_server_in_the_protocol_it_declares(
    extra: socklab.Lab, origin: str
) -> None:
    for target in ("echo-tcp", "echo-udp"):
        sent = extra_cli("send", target, "hello, mine", "--from", origin, "--json")
        assert sent.returncode == 0, sent.stderr
        events = json.loads(sent.stdout)["events"]
        assert "".join(e["data"] or "" for e in events if e["op"].startswith("recv")) == (
            "hello, mine"
        )


def test_chaos_and_restore_on_an_added_process(extra: socklab.Lab) -> None:
    assert extra_cli("chaos", "kill", "echo-tcp").returncode == 0
    refused = extra_cli("send", "echo-tcp", "anyone?", "--from", "client")
    assert refused.returncode == 1
    assert "ECONNREFUSED" in refused.stdout
    restored = extra_cli("chaos", "restore")
    assert restored.returncode == 0, restored.stderr
    assert "start echo-tcp" in restored.stdout
    assert extra_cli("send", "echo-tcp", "back", "--from", "client").returncode == 0


def test_a_link_on_an_added_host_is_set_shown_and_reset(extra: socklab.Lab) -> None:
    assert extra_cli("link", "echohost", "loss", "100%").returncode == 0
    assert "-A SOCKLAB-LOSS" in extra_cli("link", "echohost").stdout
    lost = extra_cli("send", "echo-udp", "gone?", "--from", "client")
    assert "timeout" in lost.stdout
    assert extra_cli("link", "echohost", "reset").returncode == 0
    assert "-A SOCKLAB-LOSS" not in extra_cli("link", "echohost").stdout


def test_fuzzing_a_students_server_by_the_protocol_it_declares(extra: socklab.Lab) -> None:
    fuzzed = extra_cli("fuzz", "echo-tcp", "echo-udp", "--inputs", "60", timeout=600)
    assert fuzzed.returncode == 0, fuzzed.stdout + fuzzed.stderr
    assert "fuzz echo-tcp: 60 inputs" in fuzzed.stdout
    assert "fuzz echo-udp: 60 inputs" in fuzzed.stdout
    assert fuzzed.stdout.count("answers normally afterwards: yes") == 2


def test_a_failure_schedule_on_the_added_host_judges_every_cell_it_strikes(
    extra: socklab.Lab, tmp_path: Path
) -> None:
    ran = extra_cli(
        "run",
        "failures",
        "--schedule",
        "examples/schedules/extra-host.yaml",
        "--capture",
        "--results",
        str(tmp_path),
        timeout=900,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr
    (path,) = tmp_path.glob("failures-*.json")
    result = json.loads(path.read_text())
    jsonschema.validate(result, SCHEMA)
    ids = {c["id"] for c in result["checks"]}
    assert ids == {
        "kill-echo-tcp.echo-tcp",
        "freeze-echo-udp.echo-udp",
        "freeze-echo-udp.echo-udp-connected",
        "cut-echohost.echo-tcp",
        "cut-echohost.echo-udp",
        "cut-echohost.echo-udp-connected",
    }
    assert all(c["held"] for c in result["checks"])
    assert result["capture"]["frames"] > 0
    assert path.with_suffix(".pcap").exists()


@pytest.fixture(scope="module")
def router(docker_client: docker.DockerClient) -> Iterator[socklab.Lab]:
    net = open_lab(docker_client, ROUTER_PROJECT, ROUTER_ENV, tuple(ROOT / f for f in ROUTER))
    net.down()
    net.up(timeout=180)
    yield net
    net.down()
    assert not net.backend.owned(), f"left behind: {net.backend.owned()}"


def router_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return cli(ROUTER_PROJECT, ROUTER, ROUTER_ENV, *args, timeout=timeout)


def test_two_networks_a_router_and_the_routes_it_needs(router: socklab.Lab) -> None:
    shown = json.loads(router_cli("status", "--json").stdout)
    hosts = {h["host"]: h for h in shown}
    assert hosts["router"]["ips"] == {"left": "10.205.1.2", "right": "10.205.2.2"}
    assert hosts["client"]["routes"] == ["10.205.2.0/24 via 10.205.1.2"]
    routes = router.host("client").exec(["ip", "route"]).decode()
    assert "10.205.2.0/24 via 10.205.1.2" in routes
    assert router.host("router").exec(["cat", "/proc/sys/net/ipv4/ip_forward"]).strip() == b"1"


def test_messages_cross_the_router_both_ways(router: socklab.Lab) -> None:
    for target, reply in (("tcp", "ACROSS"), ("udp", "ACROSS")):
        sent = router.send(target, "across")
        assert (sent.error, sent.reply) == ("", reply)
        assert sent.events.first("c", "connect").remote.startswith("10.205.2.10:")


def test_a_capture_shows_the_ttl_going_down_by_one(router: socklab.Lab, tmp_path: Path) -> None:
    ran = router_cli("run", "examples/experiments/ttl_across_router.py", "--results", str(tmp_path))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr
    (path,) = tmp_path.glob("ttl-across-router-*.json")
    result = json.loads(path.read_text())
    jsonschema.validate(result, SCHEMA)
    ttls = {f["ttl"] for f in result["facts"]["frames"] if f["payload"] == "across?"}
    assert ttls == {64, 63}


def test_a_built_in_experiment_says_what_this_topology_lacks(router: socklab.Lab) -> None:
    ran = router_cli("run", "dispatch")
    assert ran.returncode == 2
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith("lab: experiment dispatch needs host apphost, host shouthost, ")
    assert "process http on 80/tcp" in line
    assert line.endswith("which this topology lacks")


def test_the_journey_crosses_the_router_with_its_name_from_etc_hosts(
    router: socklab.Lab, tmp_path: Path
) -> None:
    ran = router_cli("run", "journey", "--results", str(tmp_path))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr
    (path,) = tmp_path.glob("journey-*.json")
    result = json.loads(path.read_text())
    jsonschema.validate(result, SCHEMA)
    checks = {c["id"]: c for c in result["checks"]}
    assert all(c["held"] for c in checks.values()), checks
    assert checks["name"]["observed"].startswith("/etc/hosts lists server at 10.205.2.10")
    assert "1 router(s) on the way. left: TTL 64" in checks["hops"]["observed"]
    assert "right: TTL 63" in checks["hops"]["observed"]
    places = {f["capture"] for f in result["facts"]["frames"]}
    assert places == {"lo of client", "left", "right"} or places == {"left", "right"}
