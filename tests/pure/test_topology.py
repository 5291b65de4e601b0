"""compose.yaml as the driver reads it: interpolation, and the project's real file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.errors import TopologyError
from lab.topology import PublishedPort, from_document, interpolate, load, parse_env_file

ROOT = Path(__file__).resolve().parents[2]


def project_document() -> object:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("plain", {}, "plain"),
        ("${A}", {"A": "1"}, "1"),
        ("$A-x", {"A": "1"}, "1-x"),
        ("${A}", {}, ""),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A:+alt}", {"A": "1"}, "alt"),
        ("${A:+alt}", {"A": ""}, ""),
        ("$${A}", {"A": "1"}, "${A}"),
        ("127.0.0.1:${P-8000}:80", {"P": ""}, "127.0.0.1::80"),
        ("${N:-10.203.0}.10", {"N": "10.9.9"}, "10.9.9.10"),
    ],
)
def test_interpolate(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


def test_required_variable() -> None:
    with pytest.raises(TopologyError, match="X is required: say so"):
        interpolate("${X:?say so}", {})


def test_env_file() -> None:
    text = "# comment\n\nA=1\nexport B = two \nC='quoted value'\nD=\"x\"\nnonsense\n"
    assert parse_env_file(text) == {"A": "1", "B": "two", "C": "quoted value", "D": "x"}


@pytest.mark.parametrize(
    ("raw", "env", "expected"),
    [
        (
            "127.0.0.1:${LAB_HTTP_PORT-8000}:80/tcp",
            {},
            PublishedPort("127.0.0.1", 8000, 80, "tcp", "LAB_HTTP_PORT"),
        ),
        (
            "127.0.0.1:${LAB_HTTP_PORT-8000}:80/tcp",
            {"LAB_HTTP_PORT": ""},
            PublishedPort("127.0.0.1", None, 80, "tcp", "LAB_HTTP_PORT"),
        ),
        (
            "127.0.0.1:${U-8080}:8080/udp",
            {"U": "9999"},
            PublishedPort("127.0.0.1", 9999, 8080, "udp", "U"),
        ),
    ],
)
def test_published_port(raw: str, env: dict[str, str], expected: PublishedPort) -> None:
    assert PublishedPort.parse(raw, env) == expected


def test_project_compose_file_defaults() -> None:
    topo = from_document(project_document(), {})
    assert topo.project == "netlab"
    assert topo.subnet == "10.203.0.0/24"
    apphost, shouthost = topo.hosts["apphost"], topo.hosts["shouthost"]
    # The seed's picture: two processes per host, one IP each.
    assert (apphost.ip, apphost.processes) == ("10.203.0.10", ("http", "db"))
    assert (shouthost.ip, shouthost.processes) == ("10.203.0.20", ("tcp-shout", "udp-shout"))
    assert topo.client.ip == "10.203.0.100"
    assert set(topo.processes) == {"http", "db", "tcp-shout", "udp-shout"}
    assert all(p.host_ip == "127.0.0.1" for h in topo.hosts.values() for p in h.published)
    assert {(p.container_port, p.protocol, p.variable) for p in shouthost.published} == {
        (8080, "tcp", "LAB_TCP_SHOUT_PORT"),
        (8080, "udp", "LAB_UDP_SHOUT_PORT"),
    }


def test_environment_overrides_addresses_and_ports() -> None:
    document = project_document()
    env = {"LAB_NET_PREFIX": "10.9.8", "LAB_DB_PORT": "", "COMPOSE_PROJECT_NAME": "other"}
    topo = from_document(document, env)
    assert topo.project == "other"
    assert topo.hosts["apphost"].ip == "10.9.8.10"
    db_port = next(p for p in topo.hosts["apphost"].published if p.container_port == 6379)
    assert db_port.host_port is None


def test_host_of_and_unknown_service() -> None:
    topo = from_document(project_document(), {})
    assert topo.host_of("db").name == "apphost"
    assert topo.host_of("shouthost").name == "shouthost"
    with pytest.raises(TopologyError, match="no service named 'nope'"):
        topo.host_of("nope")


def test_load_reads_dot_env_under_the_environment(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text((ROOT / "compose.yaml").read_text())
    (tmp_path / ".env").write_text("LAB_NET_PREFIX=10.1.1\nLAB_HTTP_PORT=9000\n")
    topo = load(tmp_path, {"LAB_HTTP_PORT": "9001"})
    assert topo.hosts["apphost"].ip == "10.1.1.10"
    http_port = next(p for p in topo.hosts["apphost"].published if p.container_port == 80)
    assert http_port.host_port == 9001


def test_a_process_without_its_host_is_refused() -> None:
    document = {
        "services": {
            "p": {"labels": {"lab.role": "process", "lab.host": "h"}, "network_mode": "service:h"}
        },
        "networks": {"n": {"ipam": {"config": [{"subnet": "10.0.0.0/24"}]}}},
    }
    with pytest.raises(TopologyError, match="unknown host 'h'"):
        from_document(document, {})
