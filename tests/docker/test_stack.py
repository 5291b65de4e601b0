"""The running stack, reached with real clients from inside the network and from the Docker host."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest
import redis

from lab.backends.engine import Engine
from lab.progress import silent
from lab.traffic import clients as send
from tests.docker.conftest import ENV, settled


def client_has(lab: Engine, tool: str) -> bool:
    try:
        lab.run_in("client", ["sh", "-c", f"command -v {tool}"])
    except Exception:
        return False
    return True


def test_every_service_is_healthy_on_its_fixed_address(lab: Engine) -> None:
    settled(lab)
    states = lab.states()
    assert {s: states[s].ready for s in lab.topology.services} == dict.fromkeys(
        lab.topology.services, True
    )
    prefix = ENV["LAB_NET_PREFIX"]
    assert states["apphost"].ip == f"{prefix}.10"
    assert states["shouthost"].ip == f"{prefix}.20"
    assert states["client"].ip == f"{prefix}.100"


def test_port_tables_show_one_ip_many_processes(lab: Engine) -> None:
    report = {entry.host.name: entry for entry in lab.status()}
    for host, expected in {
        "apphost": {("tcp", 80): "http", ("tcp", 6379): "db"},
        "shouthost": {("tcp", 8080): "tcp-shout", ("udp", 8080): "udp-shout"},
    }.items():
        ports = report[host].ports
        assert ports is not None
        owned = {(r.protocol, r.port): r for r in ports if r.pid is not None}
        assert {key: row.service for key, row in owned.items()} == expected, host
        pids = {row.pid for row in owned.values()}
        assert len(pids) == 2, f"{host}: each socket belongs to its own process"
    # TCP 8080 and UDP 8080 on the same IP are different sockets of different processes.
    shout = {(r.protocol, r.port): r.pid for r in report["shouthost"].ports or []}
    assert shout[("tcp", 8080)] != shout[("udp", 8080)]


def test_from_client_by_name_with_socket_scripts(lab: Engine) -> None:
    shout_ip = lab.topology.hosts["shouthost"].ip
    tcp = lab.run_script("client", send.tcp_script("tcp-shout", 8080, "héllo"))
    udp = lab.run_script("client", send.udp_script("udp-shout", 8080, "héllo"))
    assert (send.reply_text("tcp", tcp), send.failure(tcp)) == ("HÉLLO", "")
    assert (send.reply_text("udp", udp), send.failure(udp)) == ("HÉLLO", "")
    assert {e.host for e in tcp} == {"client"}
    assert {e.remote for e in tcp if e.op != "socket"} == {f"{shout_ip}:8080"}
    assert [e.op for e in udp] == ["socket", "connect", "send", "recv", "close"]


def test_from_client_with_curl_sees_its_own_address(lab: Engine) -> None:
    if not client_has(lab, "curl"):
        pytest.skip("the client image has no curl (official python base)")
    out = lab.run_in("client", ["curl", "-sS", "--fail", "http://http/"])
    info = json.loads(out)
    assert info["hostname"] == "apphost"
    assert info["ip"] == lab.topology.hosts["apphost"].ip
    # Inside the network nothing rewrites the source: the server sees the client's own IP.
    assert info["peer"]["ip"] == lab.topology.client.ip


def test_from_client_with_redis_cli(lab: Engine) -> None:
    if not client_has(lab, "redis-cli"):
        pytest.skip("the client image has no redis-cli (official python base)")
    assert lab.run_in("client", ["redis-cli", "-h", "db", "SET", "from-client", "yes"]) == b"OK\n"
    assert lab.run_in("client", ["redis-cli", "-h", "db", "GET", "from-client"]) == b"yes\n"
    assert lab.run_in("client", ["redis-cli", "-h", "db", "PING"]) == b"PONG\n"


def test_from_docker_host_with_curl_through_the_published_port(lab: Engine) -> None:
    assert shutil.which("curl"), "curl is installed by scripts/setup"
    port = lab.published_port("http", 80)
    put = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail",
            "-X",
            "PUT",
            "--data-binary",
            "from the host",
            f"http://127.0.0.1:{port}/kv/host-key",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert json.loads(put.stdout) == {"stored": "host-key", "bytes": 13}
    get = subprocess.run(
        ["curl", "-sS", "--fail", f"http://127.0.0.1:{port}/kv/host-key"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert get.stdout == b"from the host"
    who = json.loads(
        subprocess.run(
            ["curl", "-sS", "--fail", f"http://127.0.0.1:{port}/"],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    )
    # Publishing goes through the bridge: the server sees the gateway, not 127.0.0.1.
    assert who["peer"]["ip"] != "127.0.0.1"
    assert who["peer"]["ip"].startswith(ENV["LAB_NET_PREFIX"] + ".")


def test_from_docker_host_with_redis_cli(lab: Engine) -> None:
    assert shutil.which("redis-cli"), "redis-cli is installed by scripts/setup"
    port = str(lab.published_port("db", 6379))

    def redis_cli(*args: str) -> bytes:
        return subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", port, *args],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout

    assert redis_cli("SET", "k", "v") == b"OK\n"
    assert redis_cli("GET", "k") == b"v\n"
    assert redis_cli("GET", "missing") == b"\n"  # (nil), as redis-cli prints it when piped


def test_from_docker_host_with_redis_py(lab: Engine) -> None:
    client = redis.Redis(host="127.0.0.1", port=lab.published_port("db", 6379), socket_timeout=5)
    try:
        assert client.set("k", "v") is True
        assert client.get("k") == b"v"
        assert client.incr("counter") >= 1
    finally:
        client.close()


def test_from_docker_host_with_plain_sockets(lab: Engine) -> None:
    tcp_port = lab.published_port("tcp-shout", 8080, "tcp")
    udp_port = lab.published_port("udp-shout", 8080, "udp")
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as s:
        s.sendall(b"over tcp")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data == b"OVER TCP"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(10)
        u.connect(("127.0.0.1", udp_port))
        u.send(b"over udp")
        assert u.recv(4096) == b"OVER UDP"


def test_http_relays_across_hosts_to_the_shout_servers(lab: Engine) -> None:
    port = lab.published_port("http", 80)
    for protocol in ("tcp", "udp"):
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail",
                "--data-binary",
                "relay me",
                f"http://127.0.0.1:{port}/shout/{protocol}",
            ],
            capture_output=True,
            check=True,
            timeout=30,
        )
        assert out.stdout == b"RELAY ME", protocol


def test_an_unchanged_lab_is_not_rebuilt_and_a_rebuild_leaves_no_untagged_image(
    lab: Engine,
) -> None:
    from lab.backends.engine import IMAGE_LABEL
    from lab.engine import build

    lab.up(silent, timeout=120)  # builds if an earlier test (or checkout) changed the image
    lab.up(silent, timeout=120)  # ...and then nothing has changed: no build
    assert "build (up to date)" in lab.up_phases
    # A rebuild (here: of another fingerprint) leaves the old image untagged: pruned. Two
    # builds, so that the one left untagged is surely this project's own.
    for mark in ("a-test-rebuild", "another-test-rebuild"):
        lab.compose.with_env(build.ENV_KEY, mark).build()
    lab.prune_old_images()
    # Ours only (other checkouts on this Docker build the same tag); an old image still
    # used by some container (another lab, say) is not a leftover.
    in_use = {c.image.id for c in lab.client.containers.list(all=True) if c.image}
    ours = [IMAGE_LABEL, f"com.docker.compose.project={lab.topology.project}"]
    dangling = lab.client.images.list(filters={"dangling": True, "label": ours})
    assert [i.id for i in dangling if i.id not in in_use] == []
    settled(lab)
