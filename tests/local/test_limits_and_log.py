"""Bounded resources and the append-only log, with real servers on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lab.services.protocols.kv import Store
from lab.services.servers import db, http_server, tcp_shout
from lab.services.servers.db_log import AppendOnlyLog
from tests.local.clients import connect, http_response, recv_exactly, recv_to_eof
from tests.local.conftest import LoopThread, port_of, settings


@pytest.fixture
def small_db(loop: LoopThread) -> Iterator[int]:
    server = loop.run(db.start("127.0.0.1", 0, Store(), max_clients=2, idle=0.5, max_bulk=1024))
    yield port_of(server)
    loop.close_server(server)


def test_db_refuses_the_client_over_the_limit_cleanly(small_db: int) -> None:
    first, second = connect(small_db), connect(small_db)
    try:
        for s in (first, second):
            s.sendall(b"PING\r\n")
            assert recv_exactly(s, 7) == b"+PONG\r\n"
        with connect(small_db) as third:
            assert recv_to_eof(third) == b"-ERR max number of clients reached\r\n"
    finally:
        first.close()
        second.close()


def test_db_closes_an_idle_connection(small_db: int) -> None:
    with connect(small_db) as s:
        assert recv_to_eof(s) == b""  # nothing sent: closed after 0.5 s


def test_db_refuses_an_oversized_argument(small_db: int) -> None:
    with connect(small_db) as s:
        s.sendall(b"*2\r\n$4\r\nECHO\r\n$5000\r\n")
        assert recv_to_eof(s) == b"-ERR Protocol error: invalid bulk length\r\n"


def test_tcp_shout_over_its_limit_gets_eof_and_the_others_go_on(loop: LoopThread) -> None:
    server = loop.run(tcp_shout.start("127.0.0.1", 0, max_connections=1, idle=5))
    port = port_of(server)
    try:
        with connect(port) as kept:
            kept.sendall(b"a")
            assert recv_exactly(kept, 1) == b"A"
            with connect(port) as extra:
                assert recv_to_eof(extra) == b""
            kept.sendall(b"b")
            assert recv_exactly(kept, 1) == b"B"
    finally:
        loop.close_server(server)


def test_http_over_its_limit_gets_503(
    loop: LoopThread, db_port: int, tcp_shout_port: int, udp_shout_port: int
) -> None:
    server = loop.run(
        http_server.start(
            "127.0.0.1", 0, settings(db_port, tcp_shout_port, udp_shout_port), max_connections=1
        )
    )
    port = port_of(server)
    try:
        with connect(port) as kept, connect(port) as extra:
            kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert http_response(kept)[0] == 200
            status, headers, _ = http_response(extra)
            assert (status, headers["connection"]) == (503, "close")
    finally:
        loop.close_server(server)


def test_writes_survive_a_restart_through_the_log(loop: LoopThread, tmp_path: Path) -> None:
    path = str(tmp_path / "appendonly.aof")
    aof = AppendOnlyLog(path, "always")
    server = loop.run(db.start("127.0.0.1", 0, Store(), aof=aof))
    r = redis.Redis(host="127.0.0.1", port=port_of(server), socket_timeout=5)
    try:
        for i in range(50):
            assert r.set(f"key:{i}", i)
        assert r.delete("key:0") == 1
        assert r.config_set("appendfsync", "everysec")
        assert r.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert r.incr("key:1") == 2
    finally:
        r.close()
        loop.close_server(server)
    # The process "dies" without closing the log; a new one replays it.
    store = Store()
    AppendOnlyLog.read(path, lambda command: store.execute(command, 0.0))
    assert store.execute([b"DBSIZE"], 0.0).reply == 49
    assert store.execute([b"GET", b"key:1"], 0.0).reply == b"2"
    assert store.execute([b"EXISTS", b"key:0"], 0.0).reply == 0


def test_idle_timeout_zero_means_never(loop: LoopThread) -> None:
    server = loop.run(tcp_shout.start("127.0.0.1", 0, idle=0))
    try:
        with connect(port_of(server)) as s:
            s.settimeout(0.3)
            with pytest.raises(socket.timeout):
                s.recv(1)  # still open after the wait
    finally:
        loop.close_server(server)
