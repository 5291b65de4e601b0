"""Placement across machines: which machine each host and process runs on, and each
machine's share of the resolved Compose model (lab/backends/swarm/placement.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lab.backends.swarm import machines
from lab.backends.swarm.faults import dropped
from lab.backends.swarm.placement import (
    Machine,
    crossing_probes,
    machine_config,
    on_machine,
    parse_machines,
    place,
)
from lab.backends.swarm.swarm import one_swarm
from lab.errors import TopologyError, UsageError
from lab.topology import from_config

pytestmark = pytest.mark.pure
FIXTURES = Path(__file__).parent / "fixtures" / "compose"


def default() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "default.json").read_text())
    return data


def labelled(**machines: str) -> dict[str, Any]:
    config = default()
    for host, machine in machines.items():
        config["services"][host].setdefault("labels", {})["socklab.machine"] = machine
    return config


def contexts(name: str) -> str:
    known = {"lab-a": "ssh://root@a", "lab-b": "tcp://b:2376"}
    if name not in known:
        raise UsageError(f"no Docker context {name!r}")
    return known[name]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("m1=unix:///tmp/m1.sock", [Machine("m1", "unix:///tmp/m1.sock")]),
        (
            "m1=ssh://root@a, m2=tcp://b:2376",
            [Machine("m1", "ssh://root@a"), Machine("m2", "tcp://b:2376")],
        ),
        ("lab-a,lab-b", [Machine("lab-a", "ssh://root@a"), Machine("lab-b", "tcp://b:2376")]),
        ("lab-a,x=unix:///s", [Machine("lab-a", "ssh://root@a"), Machine("x", "unix:///s")]),
    ],
)
def test_machines_are_urls_or_contexts(spec: str, expected: list[Machine]) -> None:
    assert parse_machines(spec, contexts) == expected


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("", "no machines"),
        ("m1=http://a", "no engine URL"),
        ("m1=unix:///a,m1=unix:///b", "named twice"),
        ("nosuch", "no Docker context"),
        ("bad name=unix:///a", "letters, digits"),
    ],
)
def test_bad_machine_lists_are_refused(spec: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        parse_machines(spec, contexts)


@pytest.mark.parametrize(
    ("labels", "machines", "expected"),
    [
        # No labels: spread, one host per machine while there are machines.
        # (Compose's resolved model lists services by name: apphost, client, shouthost.)
        ({}, ["m1", "m2", "m3"], {"apphost": "m1", "client": "m2", "shouthost": "m3"}),
        ({}, ["m1", "m2"], {"apphost": "m1", "client": "m2", "shouthost": "m1"}),
        ({}, ["m1"], {"apphost": "m1", "shouthost": "m1", "client": "m1"}),
        # Labels win; the rest fill the least loaded machines.
        (
            {"client": "m1"},
            ["m1", "m2", "m3"],
            {"apphost": "m2", "shouthost": "m3", "client": "m1"},
        ),
        (
            {"apphost": "m3", "shouthost": "m3"},
            ["m1", "m2", "m3"],
            {"apphost": "m3", "shouthost": "m3", "client": "m1"},
        ),
    ],
)
def test_placement(labels: dict[str, str], machines: list[str], expected: dict[str, str]) -> None:
    topology = from_config(labelled(**labels))
    where = place(topology, machines)
    assert {h: where[h] for h in topology.hosts} == expected
    # A process always runs on its host's machine (it joins the host's namespaces).
    for process in topology.processes.values():
        assert where[process.name] == where[process.host]
    assert set(on_machine(where, expected["apphost"])) >= {"apphost", "db", "http"}


def test_a_label_naming_no_machine_is_refused() -> None:
    with pytest.raises(TopologyError, match="no such machine here"):
        place(from_config(labelled(apphost="m9")), ["m1", "m2"])


def test_a_process_cannot_be_placed_apart_from_its_host() -> None:
    config = default()
    config["services"]["db"]["labels"]["socklab.machine"] = "m2"
    with pytest.raises(TopologyError, match="runs where its host apphost runs"):
        from_config(config)


def test_no_machines_is_refused() -> None:
    with pytest.raises(UsageError):
        place(from_config(default()), [])


def test_each_machine_gets_its_share_of_the_compose_model() -> None:
    config = default()
    before = copy.deepcopy(config)
    topology = from_config(config)
    where = place(topology, ["m1", "m2", "m3"])
    m1 = machine_config(config, topology, where, "m1")
    assert config == before  # the resolved model itself is left as it was
    assert set(m1["services"]) == {"apphost", "http", "db"}
    assert "build" not in m1["services"]["apphost"]
    assert m1["networks"] == {"labnet": {"name": "socklab_labnet", "external": True}}
    assert all(s["labels"]["socklab.machine"] == "m1" for s in m1["services"].values())
    assert m1["services"]["http"]["depends_on"] == {
        "apphost": {"condition": "service_started", "required": True}
    }
    assert set(m1.get("volumes", {})) == {"dbdata"}  # db's volume lives where db runs
    m2 = machine_config(config, topology, where, "m2")
    assert set(m2["services"]) == {"client"}
    assert "volumes" not in m2


@pytest.mark.parametrize(
    ("swarms", "nodes", "problem"),
    [
        (
            {
                "m1": {"LocalNodeState": "active", "NodeID": "a"},
                "m2": {"LocalNodeState": "active", "NodeID": "b"},
            },
            {"a", "b"},
            "",
        ),
        (
            {
                "m1": {"LocalNodeState": "active", "NodeID": "a"},
                "m2": {"LocalNodeState": "inactive", "NodeID": ""},
            },
            {"a"},
            "m2 is in no swarm",
        ),
        (
            {
                "m1": {"LocalNodeState": "active", "NodeID": "a"},
                "m2": {"LocalNodeState": "active", "NodeID": "z"},
            },
            {"a", "b"},
            "m2 is in another swarm",
        ),
        (
            {"m1": {"LocalNodeState": "active", "NodeID": "a"}},
            None,
            "no machine is a swarm manager",
        ),
    ],
)
def test_the_engines_must_form_one_swarm(
    swarms: dict[str, dict[str, Any]], nodes: set[str] | None, problem: str
) -> None:
    assert one_swarm(swarms, nodes) == problem


def test_the_test_clusters_machines_are_named_and_addressed() -> None:
    assert machines.names(3) == ["m1", "m2", "m3"]
    assert [machines.address(m) for m in machines.names(3)] == [
        "10.231.0.11",
        "10.231.0.12",
        "10.231.0.13",
    ]
    assert machines.url("m2") == "unix:///tmp/socklab-cluster/m2/docker.sock"
    for wrong in (0, machines.MAX_MACHINES + 1):
        with pytest.raises(UsageError):
            machines.names(wrong)
    # The image's tag follows its package list, so a stale machine image is never reused.
    assert machines.image_tag() != machines.image_tag((*machines.PACKAGES, "strace"))
    assert machines.image_tag() == machines.image_tag(tuple(reversed(machines.PACKAGES)))


def test_removing_the_test_cluster_takes_its_cgroup_trees_and_nothing_else(
    tmp_path: Path,
) -> None:
    ours = tmp_path / "memory" / "socklab-cluster-m1" / "0123abcd"
    docker_own = tmp_path / "memory" / "docker" / "4567ef01"
    for folder in (ours, docker_own, tmp_path / "pids" / "socklab-cluster-m2"):
        folder.mkdir(parents=True)
    busy = tmp_path / "pids" / "socklab-cluster-m3" / "89ab"
    busy.mkdir(parents=True)
    (busy / "cgroup.procs").write_text("42\n")  # a cgroup that still holds a process
    removed = machines.remove_cgroups(tmp_path)
    assert str(ours) in removed
    assert not ours.parent.exists()
    assert not (tmp_path / "pids" / "socklab-cluster-m2").exists()
    assert docker_own.exists()  # the engine's own tree is not ours to touch
    assert busy.exists()  # rmdir refuses a cgroup that is not empty: it stays


THREE = {"apphost": "m1", "http": "m1", "client": "m2", "shouthost": "m3", "router": "m3"}
LAB = {"net": ["apphost", "web"]}  # apphost's names on the one network
CROSSING = [
    (
        "every host elsewhere asks for the mended machine's names; its hosts ask for theirs",
        {"apphost": LAB, "client": {"net": ["client"]}, "shouthost": {"net": ["shouthost"]}},
        "m3",
        {"apphost": ["shouthost"], "client": ["shouthost"], "shouthost": ["apphost", "web", "client"]},
    ),
    (
        "hosts on the same side are not asked about each other",
        {"client": {"net": ["client"]}, "shouthost": {"net": ["shouthost"]},
         "router": {"net": ["router"], "back": ["gw"]}},
        "m3",
        {"client": ["shouthost", "router"], "shouthost": ["client"], "router": ["client"]},
    ),
    (
        "a name on a network the asker is not on is not asked for: it could never resolve",
        {"apphost": {"back": ["apphost"]}, "router": {"net": ["router"], "back": ["gw"]}},
        "m1",
        {"apphost": ["gw"], "router": ["apphost"]},
    ),
    (
        "no live host on the mended machine: nothing to try",
        {"apphost": LAB, "client": {"net": ["client"]}},
        "m3",
        {},
    ),
    (
        "no live host elsewhere: nothing to try",
        {"shouthost": {"net": ["shouthost"]}, "router": {"net": ["router"]}},
        "m3",
        {},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("names", "machine", "expected"), [c[1:] for c in CROSSING],
                         ids=[c[0] for c in CROSSING])  # fmt: skip
def test_every_path_across_the_mended_machine_is_tried(
    names: dict[str, dict[str, list[str]]], machine: str, expected: dict[str, list[str]]
) -> None:
    assert crossing_probes(names, THREE, machine) == expected


def test_hosts_on_machines_a_fault_still_keeps_apart_are_not_asked_about_each_other() -> None:
    # Undoing a row that cut off m1 and m3: m3 rejoins first, while m1 is still cut off.
    names = {"apphost": LAB, "client": {"net": ["client"]}, "shouthost": {"net": ["shouthost"]}}
    apart = {frozenset(("m3", "m1")), frozenset(("m1", "m2"))}
    assert crossing_probes(names, THREE, "m3", apart) == {
        "client": ["shouthost"],
        "shouthost": ["client"],
    }


RULES = """-N SOCKLAB-FAULT
-A SOCKLAB-FAULT -s 10.231.0.12/32 -p udp -m udp --dport 4789 -j DROP
-A SOCKLAB-FAULT -d 10.231.0.12/32 -p udp -m udp --dport 4789 -j DROP
-A SOCKLAB-FAULT -s 10.231.0.13/32 -j DROP
-A SOCKLAB-FAULT -d 10.231.0.99/32 -p udp -m udp --dport 4789 -j DROP
-A SOCKLAB-FAULT -s 10.231.0.11/32 -p udp -m udp --dport 4789 -j ACCEPT
"""
ISOLATED = "-N SOCKLAB-FAULT\n-A SOCKLAB-FAULT -p udp -m udp --dport 4789 -j DROP\n"
OTHER_CHAIN = "-A DOCKER-USER -d 10.231.0.12/32 -j DROP\n"


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (RULES, {"m2", "m3"}),  # an address of no machine, and a rule that drops nothing
        (ISOLATED, {"m2", "m3"}),  # no address: cut off from every other machine
        (OTHER_CHAIN, set()),  # not the lab's rule
        ("-N SOCKLAB-FAULT\n", set()),  # the chain, emptied
        ("", set()),  # no chain at all
    ],
)
def test_the_machines_a_fault_chain_drops(rules: str, expected: set[str]) -> None:
    machines = {"10.231.0.11": "m1", "10.231.0.12": "m2", "10.231.0.13": "m3"}
    assert dropped(rules, machines, "m1") == expected
