"""The topology model, read from Compose's resolved model (``docker compose config`` output).

The fixture is the project's own compose.yaml as Compose resolved it; a Docker-tier
test checks that the real files still resolve to the same topology.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lab.errors import TopologyError, UsageError
from lab.experiments.model import Needs
from lab.topology import Endpoint, Port, PublishedPort, Route, from_config

FIXTURES = Path(__file__).parent / "fixtures" / "compose"


def default() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "default.json").read_text())
    return data


def test_the_default_lab() -> None:
    topo = from_config(default())
    assert topo.project == "socklab"
    assert (topo.network, topo.subnet) == ("labnet", "10.203.0.0/24")
    assert topo.networks["labnet"].docker_name == "socklab_labnet"
    apphost, shouthost = topo.hosts["apphost"], topo.hosts["shouthost"]
    # The seed's picture: two processes per host, one IP each.
    assert (apphost.ip, set(apphost.processes)) == ("10.203.0.10", {"http", "db"})
    assert (shouthost.ip, set(shouthost.processes)) == ("10.203.0.20", {"tcp-shout", "udp-shout"})
    assert topo.client.name == "client"
    assert topo.client.ip == "10.203.0.100"
    assert topo.processes["tcp-shout"].ports == (Port(8080, "tcp", "shout"),)
    assert topo.processes["udp-shout"].ports == (Port(8080, "udp", "shout"),)
    assert topo.processes["db"].ports == (Port(6379, "tcp", "resp"),)
    assert set(shouthost.published) == {
        PublishedPort("127.0.0.1", 8080, 8080, "tcp"),
        PublishedPort("127.0.0.1", 8080, 8080, "udp"),
    }
    assert shouthost.aliases == ("tcp-shout", "udp-shout")
    assert topo.shortcuts == {"tcp": "tcp-shout", "udp": "udp-shout"}
    assert (apphost.routes, apphost.link, apphost.forwarding) == ((), "", False)


def test_the_service_catalogue_is_every_declared_port() -> None:
    topo = from_config(default())
    assert {
        (e.process, e.port.number, e.port.transport, e.port.protocol) for e in topo.endpoints()
    } == {
        ("http", 80, "tcp", "http"),
        ("db", 6379, "tcp", "resp"),
        ("tcp-shout", 8080, "tcp", "shout"),
        ("udp-shout", 8080, "udp", "shout"),
    }


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("db", Endpoint("apphost", Port(6379, "tcp", "resp"), "db")),
        ("tcp", Endpoint("shouthost", Port(8080, "tcp", "shout"), "tcp-shout")),  # a shortcut
        ("udp", Endpoint("shouthost", Port(8080, "udp", "shout"), "udp-shout")),
        ("shouthost:8080/udp", Endpoint("shouthost", Port(8080, "udp", "shout"), "udp-shout")),
        ("shouthost:8080", Endpoint("shouthost", Port(8080, "tcp", "shout"), "tcp-shout")),
        ("10.203.0.10:80", Endpoint("apphost", Port(80, "tcp", "http"), "http")),
        ("http:80", Endpoint("apphost", Port(80, "tcp", "http"), "http")),  # an alias as host
        ("apphost:9", Endpoint("apphost", Port(9, "tcp", "raw"))),  # nobody declares it
        ("apphost:9/udp", Endpoint("apphost", Port(9, "udp", "raw"))),
    ],
)
def test_targets_resolve_to_endpoints(target: str, expected: Endpoint) -> None:
    assert from_config(default()).endpoint(target) == expected


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nope", "no process, host or address 'nope'"),
        ("apphost", "is a host: add a port"),
        ("db:x", "expected NAME"),
        ("db:6379/sctp", "transport is tcp or udp"),
    ],
)
def test_bad_targets_say_what_is_wrong(target: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        from_config(default()).endpoint(target)


def test_host_of_names_the_known_ones() -> None:
    topo = from_config(default())
    assert topo.host_of("db").name == "apphost"
    assert topo.host_of("shouthost").name == "shouthost"
    with pytest.raises(UsageError, match="no host or process named 'nope'") as raised:
        topo.host_of("nope")
    assert "apphost" in raised.value.fix


def test_a_host_on_two_networks_with_routes_and_a_declared_link() -> None:
    config = default()
    config["networks"]["backnet"] = {
        "name": "socklab_backnet",
        "ipam": {"config": [{"subnet": "10.9.0.0/24"}]},
    }
    router = copy.deepcopy(config["services"]["client"])
    router["labels"] = {"socklab.link": "delay 20ms loss 1%"}
    router["networks"] = {
        "labnet": {"ipv4_address": "10.203.0.1"},
        "backnet": {"ipv4_address": "10.9.0.1"},
    }
    router["sysctls"]["net.ipv4.ip_forward"] = "1"
    config["services"]["router"] = router
    config["services"]["client"]["labels"]["socklab.routes"] = "10.9.0.0/24 via 10.203.0.1"
    topo = from_config(config)
    r = topo.hosts["router"]
    assert (r.ip, r.networks, r.forwarding, r.link) == (
        "10.203.0.1",
        ("labnet", "backnet"),
        True,
        "delay 20ms loss 1%",
    )
    assert r.ip_on("backnet") == "10.9.0.1"
    assert topo.client.routes == (Route("10.9.0.0/24", "10.203.0.1"),)
    assert topo.name_of("10.9.0.1") == "router"
    assert topo.name_of("10.1.1.1") == "10.1.1.1"


def broken(change: Any) -> dict[str, Any]:
    config = default()
    change(config)
    return config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["services"]["db"].pop("pid"), "not its PID namespace"),
        (
            lambda c: c["services"]["db"]["labels"].update({"socklab.ports": "6379/tcp gopher"}),
            "unknown protocol 'gopher'",
        ),
        (
            lambda c: c["services"]["db"]["labels"].update({"socklab.ports": "99999/tcp"}),
            "not a port number",
        ),
        (
            lambda c: c["services"]["client"]["networks"]["labnet"].pop("ipv4_address"),
            "client needs a fixed ipv4_address",
        ),
        (
            lambda c: c["services"]["client"]["networks"]["labnet"].update(ipv4_address="10.1.1.1"),
            "outside labnet",
        ),
        (
            lambda c: c["services"]["client"]["networks"]["labnet"].update(
                ipv4_address="10.203.0.10"
            ),
            "both claim 10.203.0.10",
        ),
        (
            lambda c: c["services"]["client"]["labels"].update(
                {"socklab.routes": "10.9.0.0/24 to x"}
            ),
            "expected NETWORK via ADDRESS",
        ),
        (
            lambda c: c["services"]["client"]["labels"].update({"socklab.link": "loss lots"}),
            "socklab.link 'loss lots'",
        ),
        (
            lambda c: c["services"]["client"]["labels"].update({"socklab.role": "router"}),
            "socklab.role is 'router'",
        ),
        (lambda c: c["services"]["http"].update(network_mode="host"), "network_mode 'host'"),
        (
            lambda c: c["services"]["http"].update(network_mode="service:db", pid="service:db"),
            "not a host",
        ),
        (lambda c: c["x-socklab"]["shortcuts"].update(tcp="nobody"), "names no process"),
        # the lab's labels before it was socklab: renamed, never silently ignored
        (
            lambda c: c["services"]["http"]["labels"].update({"lab.ports": "80/tcp http"}),
            "label lab.ports is the lab's old name for socklab.ports",
        ),
        (lambda c: c.update({"x-lab": c.pop("x-socklab")}), "use x-lab, the lab.s old extension"),
        (lambda c: c["networks"]["labnet"].pop("ipam"), "network labnet has no subnet"),
        (lambda c: c.update(services={}), "define no services"),
    ],
)
def test_topologies_the_lab_cannot_keep_are_refused_in_one_line(change: Any, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        from_config(broken(change))


def test_an_experiment_says_what_the_topology_lacks() -> None:
    topo = from_config(default())
    needs = Needs(processes={"db": ("6379/tcp",), "cache": ("11211/tcp",)}, hosts=("edge",))
    assert needs.missing(topo) == ["host edge", "process cache on 11211/tcp"]
    assert Needs(processes={"db": ("6379/udp",)}).missing(topo) == ["process db on 6379/udp"]
    assert Needs(processes={"db": ("6379/tcp",)}).missing(topo) == []


def test_an_experiment_that_captures_on_one_docker_host_needs_its_hosts_on_one_machine() -> None:
    topo = from_config(default())
    needs = Needs(one_machine=True)
    assert needs.missing(topo) == []  # one engine: no machines at all
    spread = replace(topo, machines={"apphost": "m1", "shouthost": "m2", "client": "m1"})
    assert needs.missing(spread) == [
        "its hosts on one machine (it captures on that Docker host's bridges)"
    ]
    together = replace(topo, machines={"apphost": "m1", "shouthost": "m1", "client": "m1"})
    assert needs.missing(together) == []
