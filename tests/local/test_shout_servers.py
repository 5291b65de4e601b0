"""tcp-shout and udp-shout over real loopback sockets."""

from __future__ import annotations

import socket

from tests.local.clients import TIMEOUT, connect, recv_exactly, recv_to_eof, reset


def test_tcp_round_trip_and_half_close(tcp_shout_port: int) -> None:
    with connect(tcp_shout_port) as s:
        s.sendall(b"hello")
        assert recv_exactly(s, 5) == b"HELLO"
        s.sendall("wörld".encode())
        s.shutdown(socket.SHUT_WR)  # our FIN: the server answers the rest, then closes
        assert recv_to_eof(s) == "WÖRLD".encode()


def test_tcp_character_split_across_segments(tcp_shout_port: int) -> None:
    euro = "€".encode()
    with connect(tcp_shout_port) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"a" + euro[:1])
        assert recv_exactly(s, 1) == b"A"  # the partial character is held back...
        s.sendall(euro[1:])
        assert recv_exactly(s, 3) == euro  # ...and sent once complete


def test_tcp_invalid_utf8_comes_back_unchanged(tcp_shout_port: int) -> None:
    payload = b"ok \xff\xfe\x00 \xc3("
    with connect(tcp_shout_port) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        assert recv_to_eof(s) == b"OK \xff\xfe\x00 \xc3("


def test_tcp_many_clients_at_once(tcp_shout_port: int) -> None:
    clients = [connect(tcp_shout_port) for _ in range(100)]
    try:
        for i, s in enumerate(clients):
            s.sendall(f"client {i}".encode())
        for i, s in enumerate(clients):
            expected = f"CLIENT {i}".encode()
            assert recv_exactly(s, len(expected)) == expected
    finally:
        for s in clients:
            s.close()


def test_tcp_reset_mid_stream_leaves_the_server_serving(tcp_shout_port: int) -> None:
    for _ in range(20):
        s = connect(tcp_shout_port)
        s.sendall(b"x" * 100_000)
        reset(s)
    with connect(tcp_shout_port) as s:
        s.sendall(b"still here")
        assert recv_exactly(s, 10) == b"STILL HERE"


def test_tcp_large_stream_is_answered_in_full(tcp_shout_port: int) -> None:
    payload = ("abcdé" * 200_000).encode()
    with connect(tcp_shout_port) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        assert recv_to_eof(s) == payload.decode().upper().encode()


def udp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    return s


def test_udp_reply_comes_from_the_port_it_was_sent_to(udp_shout_port: int) -> None:
    with udp_socket() as s:
        s.sendto(b"hello", ("127.0.0.1", udp_shout_port))
        data, sender = s.recvfrom(65535)
    assert (data, sender) == (b"HELLO", ("127.0.0.1", udp_shout_port))


def test_udp_one_reply_per_datagram_boundaries_kept(udp_shout_port: int) -> None:
    with udp_socket() as s:
        s.connect(("127.0.0.1", udp_shout_port))
        for message in (b"one", b"two", b"three"):
            s.send(message)
        replies = sorted(s.recv(65535) for _ in range(3))
    assert replies == [b"ONE", b"THREE", b"TWO"]


def test_udp_empty_and_largest_datagrams(udp_shout_port: int) -> None:
    largest = b"z" * 65507  # 65535 - 8 (UDP header) - 20 (IPv4 header)
    with udp_socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.connect(("127.0.0.1", udp_shout_port))
        s.send(b"")
        assert s.recv(65535) == b""
        s.send(largest)
        assert s.recv(65535) == largest.upper()


def test_udp_garbage_is_echoed_and_the_server_keeps_going(udp_shout_port: int) -> None:
    with udp_socket() as s:
        s.connect(("127.0.0.1", udp_shout_port))
        for payload in (bytes(range(256)), b"\xff" * 1000, b"\x00"):
            s.send(payload)
            assert s.recv(65535) == payload.upper()
