"""Reading the kernel's socket tables, as captured from a lab host."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from docker.models.containers import Container

from lab.backends.engine import Engine
from lab.backends.model import by_container
from lab.engine.compose import Compose
from lab.errors import NotRunning
from lab.services.probes.porttable import (
    OWN,
    Entry,
    HostSocket,
    KernelSocket,
    Owner,
    RunningProcess,
    Socket,
    container_of,
    decode_address,
    join,
    join_all,
    other_socket_inodes,
    parse_proc_net,
    parse_proc_net_all,
    service_of,
    socket_fds,
    socket_inodes,
    start_time,
    timer_text,
)
from lab.topology import from_config

FIXTURES = Path(__file__).parent / "fixtures"

# Captured from /proc/net/tcp and /proc/net/udp inside shouthost (inodes shortened).
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0
   1: 0B00007F:A4F1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 100 0 0 10 0
   2: 1400CB0A:1F90 6400CB0A:C350 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0 20 4 30 10 -1
"""
PROC_NET_UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2001 2 0 0
  101: 0B00007F:9C0F 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2002 2 0 0
  102: 6400CB0A:D3A1 1400CB0A:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2003 2 0 0
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3001 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3002 1 0 100 0 0 10 0
"""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00000000:1F90", ("0.0.0.0", 8080)),
        ("0100007F:0050", ("127.0.0.1", 80)),
        ("1400CB0A:18EB", ("10.203.0.20", 6379)),
        ("00000000000000000000000001000000:1F91", ("::1", 8081)),
        ("0000000000000000FFFF00000100007F:0016", ("::ffff:127.0.0.1", 22)),
    ],
)
def test_decode_address(raw: str, expected: tuple[str, int]) -> None:
    assert decode_address(raw) == expected


def test_only_listening_tcp_sockets() -> None:
    assert parse_proc_net("tcp", PROC_NET_TCP) == [
        Socket("tcp", "0.0.0.0", 8080, 1001),
        Socket("tcp", "127.0.0.11", 42225, 1002),
    ]


def test_only_unconnected_udp_sockets() -> None:
    # 102 is a connected client socket (state 01, remote set): not a listener.
    assert parse_proc_net("udp", PROC_NET_UDP) == [
        Socket("udp", "0.0.0.0", 8080, 2001),
        Socket("udp", "127.0.0.11", 39951, 2002),
    ]


def test_ipv6_listeners() -> None:
    assert parse_proc_net("tcp6", PROC_NET_TCP6) == [
        Socket("tcp6", "::", 80, 3001),
        Socket("tcp6", "::1", 8081, 3002),
    ]


def test_socket_inodes_from_fd_links() -> None:
    links = ["/dev/null", "socket:[1001]", "pipe:[5]", "socket:[2001]", "anon_inode:[eventpoll]"]
    assert socket_inodes(links) == {1001, 2001}


def test_service_of_environ() -> None:
    assert service_of(b"PATH=/bin\0LAB_SERVICE=tcp-shout\0HOME=/\0") == "tcp-shout"
    assert service_of(b"PATH=/bin\0") == ""


def test_join_names_owners_and_leaves_foreign_sockets_unowned() -> None:
    sockets = parse_proc_net("tcp", PROC_NET_TCP) + parse_proc_net("udp", PROC_NET_UDP)
    owners = {
        1001: Owner(15, "python3 -m services.servers.tcp_shout", "tcp-shout"),
        2001: Owner(19, "python3 -m services.servers.udp_shout", "udp-shout"),
    }
    rows = join(sockets, owners)
    assert rows[:2] == [
        Entry("tcp", "0.0.0.0", 8080, 15, "python3 -m services.servers.tcp_shout", "tcp-shout"),
        Entry("udp", "0.0.0.0", 8080, 19, "python3 -m services.servers.udp_shout", "udp-shout"),
    ]
    assert all(r.pid is None for r in rows[2:])


def test_join_gives_the_owners_file_descriptor() -> None:
    owners = {1001: Owner(13, "python3 -m services.servers.tcp_shout", "tcp-shout", fd=6)}
    (row,) = [r for r in join(parse_proc_net("tcp", PROC_NET_TCP), owners) if r.pid]
    assert (row.port, row.pid, row.fd) == (8080, 13, 6)


# --- every socket, in any state (`lab sockets`) ---------------------------------------

# Captured inside the client host while a session held a connection to tcp-shout,
# a moment after an earlier one had closed (the TIME_WAIT line), and a connected
# UDP socket; trailing blanks cut.
CLIENT_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0B00007F:8BC1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2959904 1 00000000578c045c 100 0 0 10 0
   1: 645CCB0A:987A 145CCB0A:1F90 06 00000000:00000000 03:0000173D 00000000     0        0 0 3 00000000941ce9d5
   2: 645CCB0A:987C 145CCB0A:1F90 01 00000000:00000000 00:00000000 00000000 10001        0 3089014 2 00000000a0ada85a 20 4 30 11 -1
"""
CLIENT_UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 9662: 645CCB0A:87D3 145CCB0A:1F90 01 00000000:00000000 00:00000000 00000000 10001        0 3089020 2 000000009ae73d3a 0
15702: 0B00007F:9F6B 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2959903 2 0000000089624749 0
"""
# shouthost's /proc/net/unix and /proc/net/netlink: tcp-shout's asyncio self-pipe
# (a Unix socketpair, its fds 4 and 5), and netlink sockets.
SHOUTHOST_UNIX = """\
Num       RefCount Protocol Flags    Type St Inode Path
00000000768474ed: 00000003 00000000 00000000 0001 03 2961352
00000000e05a6f34: 00000003 00000000 00000000 0001 03 2961353
"""
SHOUTHOST_NETLINK = """\
sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
00000000481445b3 0   1431       00000000 0        0        0     2        0        2958973
00000000de69d14f 0   0          00000000 0        0        0     2        0        2958867
"""
TCP_SHOUT_STAT = (
    "13 (python3) S 0 13 13 0 -1 4194560 3922 0 135 0 21 14 0 0 20 0 1 0 477786 26800128 4727 "
    "18446744073709551615 4321280 7154137 140721841887360 0 0 0 0 16781312 16386 1 0 0 17 0 0"
)


def test_every_tcp_socket_with_its_state_queues_and_timer() -> None:
    assert parse_proc_net_all("tcp", CLIENT_TCP) == [
        KernelSocket("tcp", "LISTEN", "127.0.0.11:35777", "0.0.0.0:0", 0, 0, "", 2959904),
        KernelSocket(
            "tcp", "TIME_WAIT", "10.203.92.100:39034", "10.203.92.20:8080", 0, 0,
            "timewait 59.5s", 0,
        ),
        KernelSocket(
            "tcp", "ESTABLISHED", "10.203.92.100:39036", "10.203.92.20:8080", 0, 0, "", 3089014
        ),
    ]  # fmt: skip


def test_every_udp_socket_connected_or_not() -> None:
    assert [(s.state, s.local, s.remote) for s in parse_proc_net_all("udp", CLIENT_UDP)] == [
        ("ESTABLISHED", "10.203.92.100:34771", "10.203.92.20:8080"),
        ("UNCONN", "127.0.0.11:40811", "0.0.0.0:0"),
    ]


@pytest.mark.parametrize(
    ("state", "name"),
    [
        ("02", "SYN_SENT"),
        ("04", "FIN_WAIT1"),
        ("05", "FIN_WAIT2"),
        ("08", "CLOSE_WAIT"),
        ("09", "LAST_ACK"),
        ("0B", "CLOSING"),
        ("1F", "state 1F"),
    ],
)
def test_tcp_state_names(state: str, name: str) -> None:
    line = f"   0: 0100007F:1F90 0100007F:A088 {state} 0000000A:00000003 00:00000000 0 0 0 0 7 1"
    (s,) = parse_proc_net_all("tcp", "header\n" + line)
    assert (s.state, s.send_q, s.recv_q) == (name, 10, 3)


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("00:00000000", ""),
        ("03:0000173D", "timewait 59.5s"),
        ("02:000AFC7F", "keepalive 7200.0s"),
        ("01:00000014", "retransmit 0.2s"),
    ],
)
def test_timer_text(field: str, text: str) -> None:
    assert timer_text(field) == text


def test_the_socket_table_joins_owners_fds_and_held_sockets_in_no_table() -> None:
    sockets = parse_proc_net_all("tcp", CLIENT_TCP) + parse_proc_net_all("udp", CLIENT_UDP)
    script = "python3 -m services.probes.sockscript --serve 4977.1"
    owners = {
        3089014: Owner(1086, script, "", fd=3),
        3089020: Owner(1086, script, "", fd=4),
        3089022: Owner(1086, script, "", fd=5),  # socket() done, not bound: in no table
        2961352: Owner(1086, script, "", fd=6),  # a Unix socket: not ours to list
    }
    rows = join_all(sockets, owners, others={2961352})
    by_state = {(r.protocol, r.state): r for r in rows}
    assert [(r.protocol, r.state) for r in rows] == [
        ("tcp", "LISTEN"),
        ("udp", "UNCONN"),
        ("tcp", "TIME_WAIT"),  # connections by local address (port 39034, then 39036)
        ("tcp", "ESTABLISHED"),
        ("udp", "ESTABLISHED"),
        ("", ""),
    ]
    assert (by_state["tcp", "ESTABLISHED"].pid, by_state["tcp", "ESTABLISHED"].fd) == (1086, 3)
    assert (by_state["udp", "ESTABLISHED"].pid, by_state["udp", "ESTABLISHED"].fd) == (1086, 4)
    time_wait = by_state["tcp", "TIME_WAIT"]
    assert (time_wait.inode, time_wait.pid, time_wait.fd) == (0, None, None)  # no process
    assert by_state["", ""] == HostSocket("", "", "", "", 0, 0, "", 3089022, 1086, 5, script, "")


def test_unix_and_netlink_inodes() -> None:
    assert other_socket_inodes(SHOUTHOST_UNIX, SHOUTHOST_NETLINK) == {
        2961352,
        2961353,
        2958973,
        2958867,
    }


def test_socket_fds_keep_the_descriptor_numbers() -> None:
    links = {0: "/dev/null", 3: "anon_inode:[eventpoll]", 4: "socket:[2961352]", 6: "socket:[7]"}
    assert socket_fds(links) == {4: 2961352, 6: 7}


@pytest.mark.parametrize(
    ("stat", "started"),
    [(TCP_SHOUT_STAT, 477786), (TCP_SHOUT_STAT.replace("(python3)", "(a b) c)"), 477786)],
)
def test_start_time(stat: str, started: int) -> None:
    assert start_time(stat) == started


# --- owners named by their cgroup, not by LAB_SERVICE --------------------------------

HTTP_ID = "7a1c9407c0eb1aaf8cffe7977271f49e0fcd269f5744da54c61f1ca131c35d7c"
HOST_ID = "261354695d2ba891023f3793d404396c7154964dc8fef78ad491a52d99032134"
V1_LINES = ("name=systemd", "pids", "blkio", "freezer", "devices", "memory", "cpu")


@pytest.mark.parametrize(
    ("cgroup", "container"),
    [
        # cgroup v2, private cgroup namespaces: the reader's own container is its root...
        (b"0::/\n", OWN),
        # ...and another container's process (through a shared PID namespace) lies above it
        (b"0::/../" + HTTP_ID.encode() + b"\n", HTTP_ID),
        (b"0::/../../docker/" + HTTP_ID.encode() + b"\n", HTTP_ID),
        # Docker in Docker: the inner engine's container under the outer one's
        (b"0::/docker/" + b"e" * 64 + b"/docker/" + HTTP_ID.encode() + b"\n", HTTP_ID),
        (
            b"0::/system.slice/docker-" + b"e" * 64 + b".scope/docker/" + HTTP_ID.encode() + b"\n",
            HTTP_ID,
        ),
        # the systemd cgroup driver names a scope
        (b"0::/system.slice/docker-" + HTTP_ID.encode() + b".scope\n", HTTP_ID),
        # cgroup v1 with the host's cgroup namespace, as this lab's engine showed it
        (
            b"".join(f"{9 - i}:{c}:/docker/{HTTP_ID}\n".encode() for i, c in enumerate(V1_LINES))
            + f"0::/docker/{HTTP_ID}\n".encode(),
            HTTP_ID,
        ),
        # a hybrid whose every hierarchy is the reader's root: its own container
        (b"9:name=systemd:/\n4:memory:/\n0::/\n", OWN),
        # not under Docker: a 32-hex name is no container id, and not every path is "/"
        (b"4:memory:/process_api/e90c3b368d1311fbd5e2818bd5d1d974\n1:cpu:/\n0::/\n", ""),
        (b"0::/init.scope\n", ""),  # a cgroup made inside the container
        (b"0::/../" + HTTP_ID.encode() + b"0\n", ""),  # 65 hex digits: not an id
        (b"0::/\xff\xfe/../" + HTTP_ID.encode() + b"\n", HTTP_ID),  # paths are bytes
        (b"", ""),  # no cgroup file to speak of
    ],
)
def test_container_of_a_cgroup(cgroup: bytes, container: str) -> None:
    assert container_of(cgroup) == container


def listed(service: str, container_id: str) -> dict[str, Any]:
    """A container as the engine's list shows it."""
    return {"Id": container_id, "Labels": {"com.docker.compose.service": service}}


def test_an_owner_without_lab_service_is_named_by_its_container() -> None:
    # The override's case: a server that carries no LAB_SERVICE used to have no name.
    rows = [
        Entry("tcp", "0.0.0.0", 80, 31, "python3 server.py", "", 3, HTTP_ID),
        Entry("tcp", "0.0.0.0", 81, 32, "nc -l 81", "", 3, HOST_ID),  # exec'd into the host
        Entry("tcp", "0.0.0.0", 82, 33, "python3 -c ...", "check:mine.py", 3, "f" * 64),
        Entry("tcp", "0.0.0.0", 83, 34, "sleep", "", None, OWN),
        Entry("tcp", "0.0.0.0", 84, 35, "python3 helper.py", "", 3, "e" * 64),  # not the lab's
    ]
    containers = [listed("http", HTTP_ID), listed("apphost", HOST_ID), listed("db", "f" * 64)]
    named = by_container(rows, containers, processes={"http", "db"})
    assert [r.service for r in named] == ["http", "", "check:mine.py", "", ""]


def test_by_container_names_sockets_and_processes_alike() -> None:
    socket_row = HostSocket("tcp", "LISTEN", "0.0.0.0:80", "0.0.0.0:0", 0, 0, "", 9, 31, 3, "x", "", HTTP_ID)  # fmt: skip
    process = RunningProcess(31, "", "python3 server.py", 100, HTTP_ID)
    containers = [listed("http", HTTP_ID)]
    assert by_container([socket_row], containers, {"http"})[0].service == "http"
    assert by_container([process], containers, {"http"})[0].service == "http"
    assert by_container([process], containers, {"db"})[0].service == ""


def test_older_records_have_no_container() -> None:
    row: dict[str, Any] = {"protocol": "tcp", "address": "0.0.0.0", "port": 80, "pid": 1, "command": "x", "service": "http", "fd": 3}  # fmt: skip
    assert Entry(**row).container == ""


class Stubbed(Engine):
    """pid_of with its two readings given: the host's processes and the container's id."""

    def __init__(self, processes: list[RunningProcess], table: Sequence[Entry] = ()) -> None:
        super().__init__(None, from_config(default_topology()), cast(Compose, None), Path())
        self.running = processes
        self.table = list(table)

    def container(self, service: str) -> Container:
        return cast(Container, SimpleNamespace(id=HTTP_ID, short_id=HTTP_ID[:12]))

    def processes_on(self, host: str) -> list[RunningProcess]:
        return self.running

    def port_table(self, host: str) -> list[Entry]:
        return self.table


def default_topology() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "compose" / "default.json").read_text())
    return data


def test_pid_of_is_the_oldest_process_in_the_container() -> None:
    running = [
        RunningProcess(1, "", "sleep infinity", 10, OWN),
        RunningProcess(40, "http", "python3 -m services.runtime.healthcheck", 90, HTTP_ID),
        RunningProcess(7, "", "python3 -m services.servers.http_server", 20, HTTP_ID),
        RunningProcess(8, "http", "python3 -m services.servers.db", 15, "d" * 64),  # a wrong label
    ]
    assert Stubbed(running).pid_of("http") == 7


def listening(pid: int, port: int = 80) -> Entry:
    return Entry("tcp", "0.0.0.0", port, pid, "python3", "", 3)


def test_pid_of_is_the_declared_ports_owner_when_a_shell_started_it() -> None:
    running = [
        RunningProcess(5, "", "sh -c python3 -m services.servers.http_server", 10, HTTP_ID),
        RunningProcess(7, "", "python3 -m services.servers.http_server", 20, HTTP_ID),
    ]
    assert Stubbed(running, [listening(7)]).pid_of("http") == 7


def test_pid_of_never_takes_an_owner_from_another_container() -> None:
    running = [
        RunningProcess(5, "", "sh -c server", 10, HTTP_ID),
        RunningProcess(8, "", "python3 -m services.servers.db", 5, "d" * 64),
    ]
    assert Stubbed(running, [listening(8)]).pid_of("http") == 5


def test_pid_of_refuses_when_no_process_is_in_the_container() -> None:
    # It used to fall back to the owner of a declared port: the very reading the journey
    # then compared it with, so that its `process` claim held by construction.
    running = [RunningProcess(8, "http", "python3 -m services.servers.http_server", 15, "")]
    with pytest.raises(NotRunning):
        Stubbed(running, [listening(8)]).pid_of("http")
