"""The db's command logic, as Redis defines it, with a clock the test controls."""

from __future__ import annotations

import pytest

from lab.services.protocols.kv import Store
from lab.services.protocols.resp import OK, Error, Reply, Simple


def run(store: Store, line: str, now: float = 0.0) -> Reply:
    return store.execute([w.encode() for w in line.split()], now).reply


# Each scenario: commands in order, each with the reply Redis gives.
SCENARIOS: dict[str, list[tuple[str, Reply]]] = {
    "ping": [("PING", Simple("PONG")), ("ping hi", b"hi"), ("ECHO x", b"x")],
    "set-get": [
        ("SET k v", OK),
        ("GET k", b"v"),
        ("GET nope", None),
        ("SET k w", OK),
        ("GET k", b"w"),
    ],
    "nx-xx": [
        ("SET k v XX", None),
        ("SET k v NX", OK),
        ("SET k w NX", None),
        ("GET k", b"v"),
        ("SET k w XX", OK),
        ("GET k", b"w"),
    ],
    "del-exists": [
        ("SET a 1", OK),
        ("SET b 2", OK),
        ("EXISTS a b c a", 3),
        ("DEL a c", 1),
        ("EXISTS a", 0),
        ("DBSIZE", 1),
    ],
    "incr-decr": [
        ("INCR n", 1),
        ("INCR n", 2),
        ("DECR n", 1),
        ("INCRBY n 10", 11),
        ("DECRBY n 20", -9),
        ("GET n", b"-9"),
    ],
    "incr-errors": [
        ("SET s abc", OK),
        ("INCR s", Error("ERR value is not an integer or out of range")),
        ("SET plus +1", OK),
        ("INCR plus", Error("ERR value is not an integer or out of range")),
        ("INCRBY n x", Error("ERR value is not an integer or out of range")),
        ("SET big 9223372036854775807", OK),
        ("INCR big", Error("ERR increment or decrement would overflow")),
    ],
    "keys": [
        ("SET user:1 a", OK),
        ("SET user:2 b", OK),
        ("SET other c", OK),
        ("KEYS user:*", [b"user:1", b"user:2"]),
        ("KEYS *", [b"other", b"user:1", b"user:2"]),
        ("KEYS user:?", [b"user:1", b"user:2"]),
        ("KEYS nothing*", []),
    ],
    "flushall": [("SET a 1", OK), ("FLUSHALL", OK), ("DBSIZE", 0), ("FLUSHALL ASYNC", OK)],
    "errors": [
        ("GET", Error("ERR wrong number of arguments for 'get' command")),
        ("SET k", Error("ERR wrong number of arguments for 'set' command")),
        ("SET k v EX", Error("ERR syntax error")),
        ("SET k v EX 0", Error("ERR invalid expire time in 'set' command")),
        ("SET k v EX x", Error("ERR value is not an integer or out of range")),
        ("SET k v NX XX", Error("ERR syntax error")),
        ("SET k v BOGUS", Error("ERR syntax error")),
        ("NOPE a b", Error("ERR unknown command 'nope', with args beginning with: 'a' 'b'")),
    ],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(name: str) -> None:
    store = Store()
    for line, expected in SCENARIOS[name]:
        assert run(store, line) == expected, line


def test_expiry_follows_the_clock() -> None:
    store = Store()
    assert run(store, "SET k v EX 10", now=100.0) == OK
    assert run(store, "GET k", now=109.9) == b"v"
    assert run(store, "GET k", now=110.0) is None
    assert run(store, "SET p v PX 1500", now=0.0) == OK
    assert run(store, "EXISTS p", now=1.4) == 1
    assert run(store, "EXISTS p", now=1.5) == 0
    assert run(store, "DBSIZE", now=2.0) == 0


def test_set_without_expiry_clears_an_old_one_and_incr_keeps_it() -> None:
    store = Store()
    run(store, "SET k 1 EX 5", now=0.0)
    assert run(store, "INCR k", now=1.0) == 2
    assert run(store, "GET k", now=6.0) is None
    run(store, "SET k 1 EX 5", now=10.0)
    run(store, "SET k 1", now=11.0)
    assert run(store, "GET k", now=100.0) == b"1"


def test_writes_are_flagged_for_a_future_log() -> None:
    store = Store()
    flags = {
        line: store.execute(line.encode().split(), 0.0).wrote
        for line in ("SET a 1", "GET a", "DEL nope", "DEL a", "INCR n", "FLUSHALL", "PING")
    }
    assert flags == {
        "SET a 1": True,
        "GET a": False,
        "DEL nope": False,
        "DEL a": True,
        "INCR n": True,
        "FLUSHALL": True,
        "PING": False,
    }


def test_quit_asks_to_close() -> None:
    outcome = Store().execute([b"QUIT"], 0.0)
    assert (outcome.reply, outcome.close) == (OK, True)


def test_values_are_binary_safe() -> None:
    store = Store()
    value = bytes(range(256))
    assert store.execute([b"SET", b"\x00k", value], 0.0).reply == OK
    assert store.execute([b"GET", b"\x00k"], 0.0).reply == value


def test_hello_switches_protocol_and_refuses_unknown_versions() -> None:
    store = Store()
    outcome = store.execute([b"HELLO", b"3"], 0.0)
    assert outcome.protocol == 3
    assert isinstance(outcome.reply, dict)
    assert outcome.reply["proto"] == 3
    assert store.execute([b"HELLO"], 0.0).protocol == 2
    refused = store.execute([b"HELLO", b"4"], 0.0)
    assert (refused.reply, refused.protocol) == (
        Error("NOPROTO unsupported protocol version"),
        None,
    )
