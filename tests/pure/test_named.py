"""Named labs without Docker: the pool, the record in labels, the labelling file, ls's words."""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from lab.engine import named, pool
from lab.errors import UsageError
from lab.topology import from_config

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = from_config(json.loads((ROOT / "tests/pure/fixtures/compose/default.json").read_text()))
POOL = ipaddress.IPv4Network("10.210.0.0/16")


def nets(*texts: str) -> list[ipaddress.IPv4Network]:
    return [ipaddress.IPv4Network(t) for t in texts]


@pytest.mark.parametrize(
    ("taken", "expected"),
    [
        ((), "10.210.0.0/24"),
        (("10.210.0.0/24",), "10.210.1.0/24"),
        (("10.210.0.0/24", "10.210.2.0/24"), "10.210.1.0/24"),
        (("10.210.0.0/23",), "10.210.2.0/24"),  # someone's bigger network covers two
        (("10.0.0.0/8",), None),  # covers the whole pool
        (("172.17.0.0/16", "10.203.0.0/24"), "10.210.0.0/24"),  # elsewhere: ignored
        (("10.210.0.128/25",), "10.210.1.0/24"),  # a part of a /24 takes it
    ],
)
def test_the_first_free_24_of_the_pool(taken: tuple[str, ...], expected: str | None) -> None:
    got = pool.free_subnet(POOL, nets(*taken))
    assert (str(got) if got else None) == expected


def test_a_full_pool_gives_none_and_the_prefix_is_three_octets() -> None:
    small = ipaddress.IPv4Network("10.210.0.0/23")
    assert pool.free_subnet(small, nets("10.210.0.0/24", "10.210.1.0/24")) is None
    assert pool.prefix_of(ipaddress.IPv4Network("10.210.7.0/24")) == "10.210.7"


def test_ports_skip_taken_and_busy_ones_and_stop_at_the_range_end() -> None:
    busy = {20001, 20004}
    got = pool.free_ports(3, range(20000, 20010), {20000, 20002}, lambda p: p not in busy)
    assert got == [20003, 20005, 20006]
    assert pool.free_ports(5, range(20000, 20003), set(), lambda p: True) == [20000, 20001, 20002]


@pytest.mark.parametrize(
    ("text", "ok"),
    [("10.210.0.0/16", True), ("10.0.0.0/8", True), ("10.210.0.0/25", False), ("nope", False)],
)
def test_a_pool_must_hold_a_24(text: str, ok: bool) -> None:
    if ok:
        assert pool.parse_pool(text).prefixlen <= 24
    else:
        with pytest.raises(UsageError):
            pool.parse_pool(text)


def test_port_ranges() -> None:
    assert pool.parse_ports("20000-20003") == range(20000, 20004)
    for bad in ("20000", "3-2", "0-10", "1-70000", "a-b"):
        with pytest.raises(UsageError):
            pool.parse_ports(bad)


def test_docker_subnets_keep_ipv4_only() -> None:
    got = pool.ipv4_networks(["10.1.0.0/16", "fd00::/64", "", "junk", "10.2.0.1/24"])
    assert got == nets("10.1.0.0/16", "10.2.0.0/24")


@pytest.mark.parametrize("name", ["ada", "a", "b0b", "x_y-z", "9lives"])
def test_good_names(name: str) -> None:
    assert named.check_name(name) == name


@pytest.mark.parametrize("name", ["", "Ada", "-a", "a b", "a/b", "é", "x" * 41])
def test_bad_names_are_usage_errors(name: str) -> None:
    with pytest.raises(UsageError, match="lowercase letters"):
        named.check_name(name)


RECORD = named.Record(
    name="ada",
    subnet="10.210.3.0/24",
    env={"LAB_NET_PREFIX": "10.210.3", "LAB_HTTP_PORT": "20012"},
    ports={"http": 20012, "udp-shout": 20015},
    created="2026-01-01T10:00:00+00:00",
    owner="teacher",
    workdir="/srv/socklab",
    files=("/srv/socklab/compose.yaml",),
    services=("apphost", "http"),
)


def test_a_record_survives_its_labels_and_broken_labels_are_none() -> None:
    labels = RECORD.labels()
    assert labels[named.NAME_LABEL] == "ada"
    assert named.Record.from_labels(labels) == RECORD
    assert RECORD.project == "socklab-class-ada"
    assert named.Record.from_labels({}) is None
    assert named.Record.from_labels({named.RECORD_LABEL: "{"}) is None
    assert named.Record.from_labels({named.RECORD_LABEL: '{"name": "x"}'}) is None


def test_the_labelling_file_labels_every_network_and_container_and_nothing_else() -> None:
    doc: dict[str, Any] = named.override(RECORD, TOPOLOGY)
    assert set(doc) == {"networks", "services"}
    assert doc["networks"] == {"labnet": {"labels": RECORD.labels()}}
    assert set(doc["services"]) == set(TOPOLOGY.services)
    assert all(v == {"labels": {named.NAME_LABEL: "ada"}} for v in doc["services"].values())


def test_published_ports_are_named_by_the_process_behind_them() -> None:
    names = named.published_names(TOPOLOGY)
    assert names[("apphost", 80, "tcp")] == "http"
    assert names[("shouthost", 8080, "udp")] == "udp-shout"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3, "3 s"),
        (59.4, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (7800, "2 h 10 min"),
        (3e5, "3 d"),
    ],
)
def test_ages(seconds: float, text: str) -> None:
    assert named.age_text(seconds) == text


def test_the_age_of_a_record() -> None:
    now = datetime.datetime(2026, 1, 1, 10, 5, tzinfo=datetime.UTC)
    assert RECORD.age(now) == 300


@pytest.mark.parametrize(
    ("states", "expected", "text"),
    [
        ({}, 7, "no containers"),
        ({"a": ("running", "healthy"), "b": ("running", "starting")}, 2, "up"),
        ({"a": ("running", "healthy"), "b": ("running", "unhealthy")}, 2, "up (1 unhealthy)"),
        ({"a": ("running", "none"), "b": ("exited", "none")}, 2, "partly up (1/2 running)"),
        ({"a": ("running", "none")}, 2, "partly up (1/2 running)"),
        ({"a": ("exited", "none"), "b": ("created", "none")}, 2, "stopped"),
    ],
)
def test_a_labs_state_in_a_few_words(
    states: dict[str, tuple[str, str]], expected: int, text: str
) -> None:
    assert named.state_text(states, expected) == text


@pytest.mark.parametrize(
    ("largest", "marks"),
    [
        (0, []),
        (1, [1]),
        (2, [1, 2]),
        (3, [1, 2, 3]),
        (12, [1, 2, 5, 10, 12]),
        (30, [1, 2, 5, 10, 15, 20, 25, 30]),
    ],
)
def test_density_measures_at_these_k(largest: int, marks: list[int]) -> None:
    from lab.bench.density import checkpoints

    assert checkpoints(largest) == marks


def test_memory_and_cpu_are_read_as_docker_stats_reads_them(tmp_path: Path) -> None:
    from lab.bench.density import available_mib
    from lab.engine import usage

    v1 = tmp_path / "memory" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "memory.usage_in_bytes").write_text("10485760\n")
    (v1 / "memory.stat").write_text(
        "cache 4194304\ntotal_rss 3145728\ntotal_inactive_file 2097152\n"
    )
    assert usage.memory_bytes("abc", tmp_path) == 10485760 - 2097152
    assert usage.anon_bytes("abc", tmp_path) == 3145728
    cpu = tmp_path / "cpuacct" / "docker" / "abc"
    cpu.mkdir(parents=True)
    (cpu / "cpuacct.usage").write_text("1500000000\n")
    assert usage.cpu_seconds("abc", tmp_path) == 1.5
    v2 = tmp_path / "system.slice" / "docker-def.scope"
    v2.mkdir(parents=True)
    (v2 / "memory.current").write_text("4096\n")
    (v2 / "memory.stat").write_text("anon 1024\ninactive_file 1000\n")
    (v2 / "cpu.stat").write_text("usage_usec 250000\nuser_usec 1\n")
    assert usage.memory_bytes("def", tmp_path) == 3096
    assert usage.cpu_seconds("def", tmp_path) == 0.25
    assert usage.memory_bytes("nope", tmp_path) is None
    assert usage.cpu_seconds("nope", tmp_path) is None
    stat = "123 (containerd shim) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
    assert usage.process_ticks(stat) == 11 + 12 + 13 + 14
    assert available_mib("MemTotal: 100 kB\nMemAvailable:  2097152 kB\n") == 2048
