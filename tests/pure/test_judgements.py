"""Every built-in judgement, on results recorded from real runs: each claim holds on what was
observed, and fails when one observation is changed so that the kernel's truth it states
is not what was seen. (Fixtures: tests/pure/fixtures/README.md.)"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.experiments import EXPERIMENTS
from lab.experiments.model import judge_result

FIXTURES = Path(__file__).parent / "fixtures" / "results"
Data = dict[str, Any]


def recorded(name: str) -> Data:
    data: Data = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def verdicts(name: str, data: Data) -> dict[str, bool]:
    return {c.id: c.held for c in judge_result(EXPERIMENTS[name], data)}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_claim_holds_on_the_recorded_run_as_it_did_then(name: str) -> None:
    data = recorded(name)
    again = judge_result(EXPERIMENTS[name], data)
    assert [(c.id, c.held, c.observed) for c in again] == [
        (c["id"], c["held"], c["observed"]) for c in data["checks"]
    ]
    assert all(c.held for c in again)


def event(data: Data, sock: str, op: str, nth: int = 0) -> dict[str, Any]:
    """The nth recorded ``op`` on ``sock``, to change in place."""
    found = [e for e in data["events"] if e["sock"] == sock and e["op"] == op]
    return found[nth]  # type: ignore[no-any-return]


def replace_in(data: Data, sock: str, old: str, new: str) -> None:
    """Change received bytes on ``sock`` (same length keeps the framing intact)."""
    for e in data["events"]:
        if e["sock"] == sock and e["op"].startswith("recv") and e["data"] and old in e["data"]:
            e["data"] = e["data"].replace(old, new, 1)
            return
    raise AssertionError(f"{old!r} not received on {sock}")


Change = Callable[[Data], None]


def only_fails(name: str, claim: str, change: Change) -> None:
    data = copy.deepcopy(recorded(name))
    change(data)
    judged = verdicts(name, data)
    assert judged[claim] is False, f"{claim} still holds"
    assert all(held for other, held in judged.items() if other != claim), judged


def set_outcome(sock: str, op: str, outcome: str, nth: int = 0) -> Change:
    return lambda d: event(d, sock, op, nth).update(outcome=outcome)


def set_fact(path: list[str], value: Any) -> Change:
    def change(d: Data) -> None:
        target = d["facts"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _db_owned_by_http(d: Data) -> None:
    http_pid = next(r["pid"] for r in d["facts"]["port_tables"]["apphost"] if r["port"] == 80)
    for r in d["facts"]["port_tables"]["apphost"]:
        if r["port"] == 6379:
            r["pid"] = http_pid


def _udp_answered_lowercase(d: Data) -> None:
    replace_in(d, "udp8080", "UDP?", "udp?")


@pytest.mark.parametrize(
    ("claim", "change"),
    [
        ("same-ip", lambda d: event(d, "db", "connect").update(remote="10.203.0.20:6379")),
        ("different-processes", _db_owned_by_http),
        ("tcp-udp-8080", _udp_answered_lowercase),
        ("tcp-refused", set_outcome("refused", "connect", "ok")),
        ("udp-connected-refused", set_outcome("udp-conn", "recv", "timeout")),
        ("udp-unconnected-silent", set_outcome("udp-unconn", "recvfrom", "ECONNREFUSED")),
        ("eaddrinuse", set_outcome("tcp80", "bind", "ok")),
        ("separate-port-spaces", set_outcome("udp80", "bind", "EADDRINUSE")),
    ],
)
def test_dispatch_claims_can_fail(claim: str, change: Change) -> None:
    if claim == "eaddrinuse":  # the two bind claims share their evidence
        data = copy.deepcopy(recorded("dispatch"))
        change(data)
        judged = verdicts("dispatch", data)
        assert not judged["eaddrinuse"]
        assert not judged["separate-port-spaces"]
        return
    only_fails("dispatch", claim, change)


def _db_never_saw_it(d: Data) -> None:
    d["facts"]["db_log"] = [line for line in d["facts"]["db_log"] if " connect " not in line]


def _db_saw_another_connection(d: Data) -> None:
    """db logged a connection from another port of http's (not the one http reported)."""
    d["facts"]["db_log"] = [
        line[:-1] + ("1" if line[-1] != "1" else "2") if " connect " in line else line
        for line in d["facts"]["db_log"]
    ]


def _host_ip(name: str) -> str:
    """A host's address in the recorded cross-host run (Docker's word, in its facts)."""
    return str(recorded("cross-host")["facts"]["hosts"][name])


def _http_saw_shouthost_as(ip: str) -> Change:
    """http's accept() saw shouthost's connection come from ``ip``."""
    return lambda d: replace_in(d, "from-shouthost", _host_ip("shouthost"), ip)


def _shouthost_never_asked(d: Data) -> None:
    d["events"] = [e for e in d["events"] if e["sock"] != "from-shouthost"]


@pytest.mark.parametrize(
    ("claim", "change"),
    [
        # Two hosts' connections arrived from one address (a NAT between them, say):
        # Docker's word for their addresses, which used to be judged, still differs.
        ("distinct-ips", _http_saw_shouthost_as(_host_ip("apphost"))),
        # The peer was not the address Docker gave the host (same length keeps framing).
        ("distinct-ips", _http_saw_shouthost_as(_host_ip("shouthost")[:-1] + "9")),
        ("distinct-ips", _shouthost_never_asked),
        ("distinct-ips", lambda d: d["facts"].update(subnet="10.9.9.0/24")),
        (
            "dns-by-name",
            lambda d: next(e for e in d["events"] if e["op"] == "resolve").update(
                data=_host_ip("apphost")
            ),
        ),
        ("two-hops", _db_never_saw_it),
        ("two-hops", _db_saw_another_connection),
        (
            "peer-inside",
            lambda d: replace_in(d, "whoami", _host_ip("client"), _host_ip("client")[:-1] + "1"),
        ),
        ("publish-rewrites", set_fact(["gateway"], "10.203.0.254")),
    ],
)
def test_cross_host_claims_can_fail(claim: str, change: Change) -> None:
    only_fails("cross-host", claim, change)


def _one_big_piece(d: Data) -> None:
    pieces = [e for e in d["events"] if e["sock"] == "tbig" and e["op"] == "recv_all"]
    total = sum(e["nbytes"] or 0 for e in pieces)
    pieces[0]["nbytes"] = total
    d["events"] = [e for e in d["events"] if e not in pieces[1:-1]]


@pytest.mark.parametrize(
    ("claim", "change"),
    [
        ("udp-no-handshake", set_outcome("u0", "recvfrom", "timeout")),
        ("tcp-needs-connection", set_outcome("t0", "connect", "ok")),
        ("tcp-no-boundaries", lambda d: event(d, "t3", "recv").update(data="ONE", nbytes=3)),
        ("tcp-stream-pieces", _one_big_piece),
        ("udp-boundaries", lambda d: event(d, "u3", "recv").update(data="ONETWO")),
        ("udp-truncation", lambda d: event(d, "ut", "recvfrom").update(note="")),
        ("udp-truncation", set_outcome("ut", "recvfrom", "ok", nth=1)),
        ("udp-empty", lambda d: event(d, "ue", "recv").update(outcome="timeout", nbytes=None)),
        ("udp-max", set_outcome("ue", "send", "ok", nth=2)),
    ],
)
def test_tcp_vs_udp_claims_can_fail(claim: str, change: Change) -> None:
    only_fails("tcp-vs-udp", claim, change)


def _bare_lf_in_the_head(d: Data) -> None:
    replace_in(d, "raw", "\r\nContent-Type", "\nContent-Type")


def _one_byte_after_the_body(d: Data) -> None:
    e = next(x for x in d["events"] if x["sock"] == "raw" and x["op"] == "recv_all")
    e["data"] += "!"


def _another_peer_for_the_second_request(d: Data) -> None:
    second = next(e for e in d["events"] if e["sock"] == "ka" and e["op"] == "recv_all")
    body = second["data"]
    at = body.index('"port": ', body.index('"peer"')) + len('"port": ')
    digit = body[at + 1]
    second["data"] = body[: at + 1] + ("1" if digit != "1" else "2") + body[at + 2 :]


@pytest.mark.parametrize(
    ("claim", "change"),
    [
        ("crlf-lines", _bare_lf_in_the_head),
        ("keep-alive", _another_peer_for_the_second_request),
        ("pipelining", lambda d: replace_in(d, "pipe", "404 Not Found", "200 Not Found")),
    ],
)
def test_http_bytes_claims_can_fail(claim: str, change: Change) -> None:
    only_fails("http-bytes", claim, change)


def test_http_bytes_framing_claims_fail_on_a_byte_too_many() -> None:
    # One byte after the declared body: nothing frames it, so no framing claim can hold.
    data = copy.deepcopy(recorded("http-bytes"))
    _one_byte_after_the_body(data)
    judged = verdicts("http-bytes", data)
    assert not judged["content-length"]
    assert judged["keep-alive"]
    assert judged["pipelining"]


def test_http_bytes_blank_line_can_fail() -> None:
    data = copy.deepcopy(recorded("http-bytes"))
    replace_in(data, "raw", "\r\n\r\n", "\n\r\n")
    judged = verdicts("http-bytes", data)
    assert not judged["blank-line"]


def test_the_keep_alive_claim_is_judged_from_the_servers_side() -> None:
    data = recorded("http-bytes")
    observed = next(
        c for c in judge_result(EXPERIMENTS["http-bytes"], data) if c.id == "keep-alive"
    )
    assert "the server saw the requests come from" in observed.observed


def _cells() -> list[str]:
    return [f"{c['row']}.{c['client']}" for c in recorded("failures")["facts"]["cells"]]


def _cell(d: Data, claim: str) -> dict[str, Any]:
    return next(c for c in d["facts"]["cells"] if f"{c['row']}.{c['client']}" == claim)


def _phase(cell: dict[str, Any], phase: str) -> list[dict[str, Any]]:
    """The held socket's recorded events of one phase (as the judgement splits them)."""
    sock = cell["client"].replace("-", "_")
    start, end = {
        "during": (cell["fault_at"], cell["recovered_at"]),
        "after": (cell["recovered_at"], float("inf")),
    }[phase]
    return [e for e in cell["events"] if e["sock"] == sock and start <= e["t"] < end]


@pytest.mark.parametrize("claim", _cells())
def test_every_failure_cell_can_fail(claim: str) -> None:
    """The cells are judged from their socket events: change what the client received
    while the fault was in place (an answer where there was none, or none where there
    was one) and only that cell's claim fails."""

    def change(d: Data) -> None:
        recvs = [e for e in _phase(_cell(d, claim), "during") if e["op"].startswith("recv")]
        answers = [e for e in recvs if e["outcome"] == "ok" and e["nbytes"] is not None]
        for e in answers:
            e.update(outcome="timeout", nbytes=None, data="")
        if not answers:
            recvs[0].update(outcome="ok", nbytes=4, data="WHAT")

    only_fails("failures", claim, change)


def test_a_failure_cell_also_fails_when_the_old_socket_did_the_unexpected() -> None:
    def change(d: Data) -> None:
        # process killed: the old socket's send after recovery met EPIPE; had it been
        # sent and answered, the lesson (must reconnect) would not hold.
        after = _phase(_cell(d, "process-crash.tcp-shout"), "after")
        send = next(e for e in after if e["op"] == "send")
        recv = next(e for e in after if e["op"] == "recv")
        send.update(outcome="ok")
        recv.update(outcome="ok", nbytes=15, data="TCP_SHOUT-AFTER")

    only_fails("failures", "process-crash.tcp-shout", change)


def test_a_failure_cell_fails_when_its_new_socket_is_not_answered() -> None:
    def change(d: Data) -> None:
        cell = _cell(d, "partition.db")
        for e in cell["events"]:
            if e["sock"] == "db_new" and e["op"] == "recv":
                e.update(outcome="timeout", nbytes=None, data="")

    only_fails("failures", "partition.db", change)


def test_a_failure_cell_with_nothing_received_during_the_fault_is_not_judged() -> None:
    # An empty "during" window once read as "silent" (all() over nothing): partition.db held.
    data = copy.deepcopy(recorded("failures"))
    cell = _cell(data, "partition.db")
    during = {id(e) for e in _phase(cell, "during")}
    cell["events"] = [e for e in cell["events"] if id(e) not in during]
    check = next(c for c in judge_result(EXPERIMENTS["failures"], data) if c.id == "partition.db")
    assert (check.judged, check.held) == (False, False)
    assert "no receive recorded" in check.observed


def test_the_labels_a_run_wrote_are_not_what_is_judged() -> None:
    def change(d: Data) -> None:  # labels saying everything was fine: the events disagree
        cell = _cell(d, "process-crash.tcp-shout")
        cell.update(during="answered", old_socket_works=True, lost=[], late=[])

    data = copy.deepcopy(recorded("failures"))
    change(data)
    assert all(verdicts("failures", data).values())  # judged as recorded: still held


@pytest.mark.parametrize(
    ("claim", "change"),
    [
        ("fsync-always", set_fact(["runs", "always", "lost"], 3)),
        ("fsync-everysec", set_fact(["runs", "everysec", "kills"], 2)),
        ("fsync-no", set_fact(["runs", "no", "acked"], 0)),
        ("fsync-always", set_fact(["runs", "always", "broken_at"], [])),  # no kill cut it
        ("torn-record", set_fact(["torn", "tail"], "")),  # nothing torn in the log's bytes
        ("torn-record", set_fact(["torn", "log_bytes_after"], 0)),  # the log not as db left it
        ("power-always", set_fact(["power", "always", "lost"], 12)),  # acknowledged, then lost
        ("power-always", set_fact(["power", "always", "fsyncs"], 0)),  # no fsync ever seen
        ("power-always", set_fact(["power", "always", "broken_at"], [])),  # the cut cut nothing
        ("power-everysec", set_fact(["power", "everysec", "window_s"], 2.4)),
        ("power-no", set_fact(["power", "no", "lost"], 0)),
    ],
)
def test_db_kill_claims_can_fail(claim: str, change: Change) -> None:
    only_fails("db-kill", claim, change)


def _deliveries(change: Callable[[dict[str, Any]], None], link: str, protocol: str) -> Change:
    def apply(d: Data) -> None:
        run = next(
            r for r in d["facts"]["deliveries"] if r["link"] == link and r["protocol"] == protocol
        )
        change(run)

    return apply


@pytest.mark.parametrize(
    ("claim", "change"),
    [
        ("tcp-all-in-order", _deliveries(lambda r: r.update(in_order=False), "loss 10%", "tcp")),
        ("tcp-pays-in-time", _deliveries(lambda r: r.update(resent_p50_ms=1.0), "loss 30%", "tcp")),
        ("udp-loses-its-share", _deliveries(lambda r: r.update(delivered=300), "loss 30%", "udp")),
        ("udp-never-resends", _deliveries(lambda r: r.update(sent_twice=[7]), "loss 10%", "udp")),
        ("delay-is-a-floor", _deliveries(lambda r: r.update(min_ms=20.0), "delay 50ms", "udp")),
        ("udp-unhurried", _deliveries(lambda r: r.update(p50_ms=40.0), "loss 10%", "udp")),
    ],
)
def test_impaired_delivery_claims_can_fail(claim: str, change: Change) -> None:
    only_fails("impaired-delivery", claim, change)


# --- sockets: judged from traced system calls and /proc snapshots only ----------------


def _call(d: Data, trace: str, **match: Any) -> dict[str, Any]:
    """The first recorded system call of ``trace`` whose fields match, to change in place."""
    found = [c for c in d["facts"]["traces"][trace] if all(c.get(k) == v for k, v in match.items())]
    assert found, f"no {match} in the {trace} trace"
    return found[0]  # type: ignore[no-any-return]


def _row(d: Data, snapshot: str, host: str, **match: Any) -> dict[str, Any]:
    found = [
        r
        for r in d["facts"]["snapshots"][snapshot][host]
        if all(r.get(k) == v for k, v in match.items())
    ]
    assert found, f"no {match} in {host} at {snapshot}"
    return found[0]  # type: ignore[no-any-return]


def _fresh_socket_elsewhere(d: Data) -> None:
    """/proc shows the never-bound socket at another fd than socket() returned."""
    _row(d, "held", "client", state="").update(fd=11)


def _fresh_socket_refused(d: Data) -> None:
    _call(d, "client", name="socket", new_fd=3).update(result=-1, errno="EMFILE", new_fd=None)


def _one_fd_for_two_connections(d: Data) -> None:
    accepts = [c for c in d["facts"]["traces"]["tcp-shout"] if c["name"] == "accept4"]
    ours = [c for c in accepts if c["peer"].startswith("10.") and c["new_fd"] is not None]
    ours[2].update(new_fd=ours[0]["new_fd"], result=ours[0]["new_fd"])


def _listener_moved(d: Data) -> None:
    _row(d, "held", "shouthost", state="LISTEN", service="tcp-shout").update(fd=5)


def _udp_answered_on_another_fd(d: Data) -> None:
    _call(d, "udp-shout", name="sendto", data="HI U2").update(fd=4)


def _udp_socket_per_peer(d: Data) -> None:
    rows = d["facts"]["snapshots"]["held"]["shouthost"]
    listener = _row(d, "held", "shouthost", service="udp-shout")
    rows.append({**listener, "local": "0.0.0.0:8081", "fd": 4, "inode": listener["inode"] + 1})


def _no_time_wait(d: Data) -> None:
    """The connection the client closed first (its fd 4) is not left in TIME_WAIT."""
    closed = _row(d, "held", "client", state="ESTABLISHED", fd=4)
    _row(d, "closed-first", "client", local=closed["local"]).update(state="FIN_WAIT2")


def _server_closed_first(d: Data) -> None:
    client_close = _call(d, "client", name="close", fd=4)
    _call(d, "tcp-shout", name="close", fd=7).update(t=client_close["t"] - 0.001)


def _peer_closed_before_the_snapshot(d: Data) -> None:
    _row(d, "close-wait", "shouthost", state="CLOSE_WAIT").update(state="LAST_ACK", pid=None)


def _server_script_closed_early(d: Data) -> None:
    calls = d["facts"]["traces"]["shouthost (script)"]
    accept = next(c for c in calls if c["name"] == "accept4")
    calls.insert(
        calls.index(accept) + 1,
        {**accept, "name": "close", "args": "4", "t": accept["t"] + 0.0001, "new_fd": None,
         "result": 0, "peer": "", "fd": accept["new_fd"]},
    )  # fmt: skip


def _second_send_went_through(d: Data) -> None:
    _call(d, "client", name="sendto", data="again").update(result=5, errno="")


def _dead_fd_closed(d: Data) -> None:
    rows = d["facts"]["snapshots"]["after-epipe"]["client"]
    dead = _row(d, "after-epipe", "client", state="", fd=4)
    rows.remove(dead)


def _healed(d: Data) -> None:
    _call(d, "client", name="sendto", data="still there?").update(result=12, errno="")


def _new_socket_unanswered(d: Data) -> None:
    _call(d, "client", name="recvfrom", data="NEW SOCKET").update(result=0, data="")


def _bound_without_reuseaddr(d: Data) -> None:
    _call(d, "shouthost (script)", name="bind", errno="EADDRINUSE").update(result=0, errno="")


def _no_time_wait_on_the_port(d: Data) -> None:
    snap = d["facts"]["snapshots"]["restart"]
    port = f":{d['facts']['script_port']}"
    snap["shouthost"] = [
        r for r in snap["shouthost"] if not (r["state"] == "TIME_WAIT" and port in r["local"])
    ]


@pytest.mark.parametrize(
    ("claim", "change"),
    [
        ("socket-is-fd", _fresh_socket_elsewhere),
        ("socket-is-fd", _fresh_socket_refused),
        ("accept-new-fd", _one_fd_for_two_connections),
        ("accept-new-fd", _listener_moved),
        ("udp-one-fd", _udp_answered_on_another_fd),
        ("udp-one-fd", _udp_socket_per_peer),
        ("time-wait", _no_time_wait),
        ("time-wait", _server_closed_first),
        ("close-wait", _peer_closed_before_the_snapshot),
        ("close-wait", _server_script_closed_early),
        ("dead-peer-fd", _second_send_went_through),
        ("dead-peer-fd", _dead_fd_closed),
        ("reconnect", _healed),
        ("reconnect", _new_socket_unanswered),
        ("reuseaddr", _bound_without_reuseaddr),
        ("reuseaddr", _no_time_wait_on_the_port),
    ],
)
def test_sockets_claims_can_fail(claim: str, change: Change) -> None:
    only_fails("sockets", claim, change)
