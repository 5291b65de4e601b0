"""Socket scripts against the loopback servers: what each operation records."""

from __future__ import annotations

import socket

from lab.services.probes.sockscript import Event, Runner, raw, text
from lab.traffic import clients as send
from lab.traffic.script import Script


def run(steps: list[dict[str, object]]) -> list[Event]:
    return Runner(hostname="test").run(steps)


def test_tcp_round_trip_records_every_operation(tcp_shout_port: int) -> None:
    events = run(send.tcp_script("127.0.0.1", tcp_shout_port, "hi"))
    assert [(e.op, e.outcome) for e in events] == [
        ("socket", "ok"),
        ("connect", "ok"),
        ("sendall", "ok"),
        ("shutdown", "ok"),
        ("recv_all", "ok"),
        ("recv_all", "eof"),
        ("close", "ok"),
    ]
    assert events[2].nbytes == 2
    assert events[4].data == "HI"
    assert events[1].remote == f"127.0.0.1:{tcp_shout_port}"
    assert events[1].local.startswith("127.0.0.1:")
    assert [e.t for e in events] == sorted(e.t for e in events)


def test_refused_connect_is_recorded_and_the_script_goes_on(closed_port: int) -> None:
    events = run(send.tcp_script("127.0.0.1", closed_port, "hi"))
    outcomes = {e.op: e.outcome for e in events}
    assert outcomes["connect"] == "ECONNREFUSED"
    assert outcomes["sendall"] == "EPIPE"  # nothing to write to
    assert send.failure(events) == "connect: ECONNREFUSED"


def test_connected_udp_hears_icmp_unconnected_does_not(closed_port: int) -> None:
    # closed_port is a TCP port; no UDP socket is bound there either.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free_udp = probe.getsockname()[1]
    connected = run(send.udp_script("127.0.0.1", free_udp, "x", connected=True))
    unconnected = run(send.udp_script("127.0.0.1", free_udp, "x", connected=False, timeout=0.3))
    assert {e.op: e.outcome for e in connected}["recv"] == "ECONNREFUSED"
    assert {e.op: e.outcome for e in unconnected}["recvfrom"] == "timeout"


def test_recvfrom_notes_truncation(udp_shout_port: int) -> None:
    events = run(
        [
            {"op": "socket", "sock": "u", "type": "udp"},
            {
                "op": "sendto",
                "sock": "u",
                "host": "127.0.0.1",
                "port": udp_shout_port,
                "fill": {"byte": "x", "count": 1500},
            },
            {"op": "recvfrom", "sock": "u", "size": 1000},
        ]
    )
    sent, got = events[1], events[2]
    assert (sent.nbytes, got.nbytes, got.note) == (1500, 1000, "truncated")
    assert got.data == "X" * 1000
    assert got.remote == f"127.0.0.1:{udp_shout_port}"


def test_wait_for_gathers_several_sends_into_one_recv() -> None:
    events = run(
        [
            {"op": "socket", "sock": "l", "type": "tcp"},
            {"op": "bind", "sock": "l", "host": "127.0.0.1", "port": 0},
            {"op": "listen", "sock": "l"},
            {"op": "socket", "sock": "c", "type": "tcp"},
            {"op": "connect", "sock": "c", "to": "l"},
            {"op": "accept", "sock": "l", "as": "s"},
            {"op": "send", "sock": "c", "data": "one"},
            {"op": "send", "sock": "c", "data": "two"},
            {"op": "send", "sock": "c", "data": "three"},
            {"op": "recv", "sock": "s", "wait_for": 11},
        ]
    )
    assert events[-1].data == "onetwothree"


def test_second_bind_is_eaddrinuse(closed_port: int) -> None:
    events = run(
        [
            {"op": "socket", "sock": "b", "type": "tcp"},
            {"op": "bind", "sock": "b", "host": "127.0.0.1", "port": closed_port},
        ]
    )
    assert events[-1].outcome == "EADDRINUSE"


def test_a_restarted_server_binds_over_time_wait_only_with_reuseaddr() -> None:
    # The server closes first, so its end of the connection waits in TIME_WAIT on its port.
    # TIME_WAIT keeps the old socket's SO_REUSEADDR: the old server sets it too.
    old = Script()
    old.tcp("old", reuseaddr=True).bind("127.0.0.1", 0).listen()
    runner = Runner(hostname="test")
    try:
        for step in old.steps:
            runner.step(step)
        port = runner.socks["old"].sock.getsockname()[1]
        for step in [
            {"op": "socket", "sock": "c", "type": "tcp"},
            {"op": "connect", "sock": "c", "to": "old"},
            {"op": "accept", "sock": "old", "as": "conn"},
            {"op": "close", "sock": "conn"},  # the server closes first
            {"op": "recv", "sock": "c"},  # EOF
            {"op": "close", "sock": "c"},
            {"op": "close", "sock": "old"},
            {"op": "socket", "sock": "plain", "type": "tcp"},
            {"op": "bind", "sock": "plain", "host": "127.0.0.1", "port": port},
            {"op": "socket", "sock": "reuse", "type": "tcp", "reuseaddr": True},
            {"op": "bind", "sock": "reuse", "host": "127.0.0.1", "port": port},
        ]:
            runner.step(step)
    finally:
        for s in runner.socks.values():
            s.sock.close()
    assert [e.outcome for e in runner.events if e.op == "bind"] == ["ok", "EADDRINUSE", "ok"]


def test_unknown_name_is_an_outcome_not_a_crash() -> None:
    events = run(
        [
            {"op": "socket", "sock": "c", "type": "tcp"},
            {"op": "connect", "sock": "c", "host": "no-such-host.invalid", "port": 1},
        ]
    )
    assert events[-1].outcome.startswith("unresolved")


def test_binary_data_survives_the_json_form() -> None:
    data = bytes(range(256))
    assert raw(text(data)) == data


def test_db_script_reply_as_redis_cli_shows_it(db_port: int) -> None:
    events = run(send.db_script("127.0.0.1", db_port, ["SET", "sk", "v"]))
    assert send.reply_text("resp", events) == "OK"
    events = run(send.db_script("127.0.0.1", db_port, ["GET", "sk"]))
    assert send.reply_text("resp", events) == '"v"'
