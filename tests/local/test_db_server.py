"""The db service with a real Redis client (redis-py) and with raw bytes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from tests.local.clients import connect, recv_exactly, recv_to_eof


@pytest.fixture
def r(db_port: int) -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=db_port, socket_timeout=5)
    client.flushall()
    yield client
    client.close()


def test_redis_py_commands(r: redis.Redis) -> None:
    assert r.ping() is True
    assert r.echo("hi") == b"hi"
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.set("k", "w", nx=True) is None
    assert r.set("new", "x", xx=True) is None
    assert r.set("k", "w", xx=True) is True
    assert r.exists("k", "nope") == 1
    assert r.incr("n") == 1
    assert r.incrby("n", 41) == 42
    assert r.decr("n") == 41
    assert sorted(r.keys("*")) == [b"k", b"n"]
    assert r.dbsize() == 2
    assert r.delete("k", "n", "nope") == 2
    assert r.get("k") is None


def test_expiry_with_px(r: redis.Redis) -> None:
    assert r.set("short", "v", px=1) is True
    assert r.set("long", "v", ex=3600) is True
    # Poll to a deadline rather than sleeping a fixed time.
    deadline = time.monotonic() + 5
    while r.exists("short") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert r.exists("short") == 0
    assert r.exists("long") == 1


def test_pipelining(r: redis.Redis) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(500):
        pipe.set(f"key:{i}", i)
    for i in range(500):
        pipe.get(f"key:{i}")
    results = pipe.execute()
    assert results[:500] == [True] * 500
    assert results[500:] == [str(i).encode() for i in range(500)]


def test_errors_are_replies_not_crashes(r: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match="unknown command 'nope'"):
        r.execute_command("NOPE", "x")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("GET")
    r.set("s", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("s")
    assert r.ping() is True  # the same connection goes on


def test_inline_commands_as_nc_would_send_them(db_port: int) -> None:
    with connect(db_port) as s:
        s.sendall(b"SET greeting 'hello world'\r\nGET greeting\r\nQUIT\r\n")
        assert recv_to_eof(s) == b"+OK\r\n$11\r\nhello world\r\n+OK\r\n"


def test_malformed_frame_closes_only_that_connection(db_port: int, r: redis.Redis) -> None:
    with connect(db_port) as bad:
        bad.sendall(b"*1\r\n$x\r\n")
        assert recv_to_eof(bad) == b"-ERR Protocol error: invalid bulk length\r\n"
    assert r.ping() is True


def test_reply_order_survives_one_byte_writes(db_port: int) -> None:
    frames = b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"
    with connect(db_port) as s:
        for i in range(len(frames)):
            s.sendall(frames[i : i + 1])
        assert recv_exactly(s, len(b"+PONG\r\n$2\r\nhi\r\n")) == b"+PONG\r\n$2\r\nhi\r\n"


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_in_both_protocol_versions(db_port: int, protocol: int) -> None:
    # redis-py 5+ defaults to RESP3 (HELLO 3); older clients and redis-cli speak RESP2.
    client = redis.Redis(host="127.0.0.1", port=db_port, protocol=protocol, socket_timeout=5)
    try:
        assert client.set("proto", protocol) is True
        assert client.get("proto") == str(protocol).encode()
        assert client.get("missing-key") is None
    finally:
        client.close()
