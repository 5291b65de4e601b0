"""Reading the kernel's socket tables, as captured from a lab host."""

from __future__ import annotations

import pytest

from services.probes.porttable import (
    Entry,
    Owner,
    Socket,
    decode_address,
    join,
    parse_proc_net,
    service_of,
    socket_inodes,
)

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
