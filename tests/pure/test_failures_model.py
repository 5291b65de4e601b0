"""The failure matrix's reasoning, on recorded events: verdicts, answers, schedules, pictures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lab.errors import ScheduleError
from lab.experiments.builtin.failures import (
    DEFAULT_ROWS,
    EXPECTED,
    Cell,
    Client,
    Column,
    Expect,
    Failures,
    Row,
    answered_tags,
    bystanders,
    columns_of,
    draw_targets,
    during_verdict,
    expectation,
    judge,
    judge_bystander,
    load_schedule,
)
from lab.services.probes.sockscript import Event
from lab.topology import Topology, from_config

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = from_config(json.loads((ROOT / "tests/pure/fixtures/compose/default.json").read_text()))
COLUMNS = {c.name: c for c in columns_of(TOPOLOGY)}


def ev(op: str, outcome: str, nbytes: int | None = None, data: str | None = None) -> Event:
    return Event(0.0, "client", "s", "tcp", op, "", "", outcome, nbytes, data, dt=0.01)


@pytest.mark.parametrize(
    ("events", "verdict"),
    [
        (
            [ev("recv", "eof", 0), ev("send", "ok", 3), ev("send", "EPIPE"), ev("recv", "eof", 0)],
            "eof-then-epipe",
        ),
        ([ev("recv", "ECONNRESET"), ev("send", "EPIPE")], "reset"),
        ([ev("recv", "eof", 0), ev("send", "ok", 3), ev("recv", "ECONNRESET")], "eof-then-epipe"),
        (
            [ev("recv", "eof", 0), ev("send", "ok", 3), ev("send", "ok", 3), ev("recv", "timeout")],
            "eof-then-silent",
        ),
        ([ev("send", "ok", 3), ev("recv", "ECONNREFUSED")], "refused"),
        ([ev("recv", "timeout"), ev("send", "ok", 3), ev("recv", "timeout")], "silent"),
        ([ev("sendto", "ok", 3), ev("recvfrom", "ok", 3, "X")], "answered"),
        ([ev("recv", "EHOSTUNREACH")], "other: recv EHOSTUNREACH"),
        # Nothing received while the fault was in place: no outcome, not "silent".
        ([], "unseen"),
        ([ev("send", "ok", 3), ev("sendto", "ok", 3)], "unseen"),
    ],
)
def test_during_verdict(events: list[Event], verdict: str) -> None:
    assert during_verdict(events) == verdict


def client(name: str) -> Client:
    return Client(COLUMNS[name], COLUMNS[name].sock)


def test_the_columns_come_from_the_topology() -> None:
    assert {(c.name, c.kind, c.protocol, c.process, c.host, c.port) for c in COLUMNS.values()} == {
        ("db", "stream", "resp", "db", "apphost", 6379),
        ("http", "stream", "http", "http", "apphost", 80),
        ("tcp-shout", "stream", "shout", "tcp-shout", "shouthost", 8080),
        ("udp-shout", "udp", "shout", "udp-shout", "shouthost", 8080),
        ("udp-shout-connected", "udp-connected", "shout", "udp-shout", "shouthost", 8080),
    }


def test_answered_tags_per_protocol() -> None:
    tcp = client("tcp-shout")
    assert answered_tags(
        tcp, b"TCP-DURING1TCP-AFTER", ["tcp-during1", "tcp-during2", "tcp-after"]
    ) == ["tcp-during1", "tcp-after"]
    resp = client("db")
    assert answered_tags(resp, b"$11\r\nresp-during\r\n", ["resp-during", "resp-after"]) == [
        "resp-during"
    ]
    http = client("http")
    two = b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n"
    assert answered_tags(http, two, ["a", "b", "c"]) == ["a", "b"]  # in order, by count
    echo = Client(Column("mine", "stream", "echo", "mine", "h", 9), "mine")
    assert answered_tags(echo, b"a-1b-2", ["a-1", "A-2", "b-2"]) == ["a-1", "b-2"]


def cell(**overrides: object) -> Cell:
    base: dict[str, object] = dict(
        row="r",
        client="tcp-shout",
        during="silent",
        noticed_after_s=None,
        old_socket_works=True,
        new_socket_works=True,
        lost=[],
        late=["x"],
        events=[],
        fault_at=1.0,
        recovered_at=2.0,
    )
    return Cell(**{**base, **overrides})  # type: ignore[arg-type]


def test_judge_compares_every_part_of_the_expectation() -> None:
    late = Expect("silent", True, True, "")
    assert judge(cell(), late)
    assert not judge(cell(during="refused"), late)
    assert not judge(cell(old_socket_works=False), late)
    assert not judge(cell(new_socket_works=False), late)
    assert not judge(cell(late=[], lost=["x"]), late)
    lost = Expect("silent", True, False, "")
    assert judge(cell(late=[], lost=["x"]), lost)
    assert judge(cell(late=[], lost=[]), Expect("silent", True, None, ""))


def resolved(rows: tuple[Row, ...], seed: int = 0) -> dict[str, Row]:
    return {r.name: r for r in draw_targets(rows, seed, TOPOLOGY)}


def test_every_default_cell_has_an_expectation_and_a_claim() -> None:
    rows = resolved(DEFAULT_ROWS)
    for row in rows.values():
        for column in COLUMNS.values():
            assert expectation(row, column) is not None, (row.name, column.name)
    claims = Failures().claims_for(TOPOLOGY)
    assert len(claims) == len(DEFAULT_ROWS) * len(COLUMNS)
    assert "process-crash.tcp-shout" in {c.id for c in claims}


def test_the_seed_note_is_in_the_matrix() -> None:
    # "BrokenPipeError" writing to a dead TCP server; "udp works tho" after a restart.
    rows = resolved(DEFAULT_ROWS)
    assert (
        expectation(rows["process-crash"], COLUMNS["tcp-shout"])
        is EXPECTED[("kill", False, "stream")]
    )
    assert EXPECTED[("kill", False, "stream")].during == "eof-then-epipe"
    assert expectation(rows["restart"], COLUMNS["udp-shout"]).during == "answered"  # type: ignore[union-attr]
    assert EXPECTED[("restart", False, "stream")].old is False


def test_a_scheduled_row_is_judged_where_it_strikes_and_only_there() -> None:
    rows = resolved(
        (Row("crash-one", "", "kill", ("tcp-shout",)), Row("cut-app", "", "cut", ("apphost",)))
    )
    assert (
        expectation(rows["crash-one"], COLUMNS["tcp-shout"]) is EXPECTED[("kill", False, "stream")]
    )
    assert expectation(rows["crash-one"], COLUMNS["udp-shout"]) is None  # udp-shout untouched
    assert expectation(rows["cut-app"], COLUMNS["http"]) is EXPECTED[("cut", True, "stream")]
    assert expectation(rows["cut-app"], COLUMNS["tcp-shout"]) is None
    schedule = Failures((Row("crash-one", "", "kill", ("tcp-shout",)),))
    assert [c.id for c in schedule.claims_for(TOPOLOGY)] == ["crash-one.tcp-shout"]


def test_every_fault_kind_predicts_something_wherever_it_strikes() -> None:
    for fault in ("kill", "stop", "pause", "restart"):
        for target in ("apphost", "shouthost", "db", "tcp-shout", "udp-shout", "http"):
            claims = Failures((Row("r", "", fault, (target,)),)).claims_for(TOPOLOGY)
            assert claims, (fault, target)
    assert Failures((Row("r", "", "cut", ("shouthost",)),)).claims_for(TOPOLOGY)


def test_schedule_file_and_seeded_choice_replay_exactly() -> None:
    path = ROOT / "examples/schedules/one-at-a-time.yaml"
    rows, seed = load_schedule(path)
    again, _ = load_schedule(path)
    assert seed == 7
    assert rows == again
    assert [r.name for r in rows] == ["crash-tcp-shout", "freeze-someone", "cut-apphost"]
    assert rows[0] == Row(
        "crash-tcp-shout", "only tcp-shout is killed", "kill", ("tcp-shout",), 0.5
    )
    drawn = draw_targets(tuple(rows), seed, TOPOLOGY)
    assert drawn == draw_targets(tuple(rows), seed, TOPOLOGY)
    assert len(drawn[1].targets) == 1
    assert drawn[1].targets[0] in TOPOLOGY.processes
    assert len(Failures(tuple(rows), seed).claims_for(TOPOLOGY)) > 0


def test_bad_schedules_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rows:\n  - name: x\n")
    with pytest.raises(ScheduleError, match="row 1 is incomplete"):
        load_schedule(bad)
    bad.write_text("just text")
    with pytest.raises(ScheduleError, match="list of rows"):
        load_schedule(bad)
    bad.write_text("rows:\n  - {fault: heal, targets: [apphost]}\n")
    with pytest.raises(ScheduleError, match="no fault 'heal'"):
        load_schedule(bad)
    with pytest.raises(ScheduleError, match="no host or process 'nobody'"):
        draw_targets((Row("r", "", "kill", ("nobody",)),), 0, TOPOLOGY)
    with pytest.raises(ScheduleError, match="client is where the matrix's clients run"):
        draw_targets((Row("r", "", "kill", ("client",)),), 0, TOPOLOGY)
    with pytest.raises(ScheduleError, match="cut takes a host"):
        draw_targets((Row("r", "", "cut", ("db",)),), 0, TOPOLOGY)
    with pytest.raises(ScheduleError, match="cut takes a host"):  # it resolved to processes
        draw_targets((Row("r", "", "cut", ("every-process",)),), 0, TOPOLOGY)


def test_cell_round_trips_through_json_and_draws(tmp_path: Path) -> None:
    from dataclasses import asdict

    from lab.experiments.builtin.failures import picture

    events = [ev("send", "ok", 3), ev("recv", "eof", 0), ev("send", "EPIPE")]
    original = cell(events=events, during="eof-then-epipe", late=[], lost=["m"])
    again = Cell.from_dict(asdict(original))
    assert again == original
    png = picture.cell_timeline(again, tmp_path / "cell.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def across(**machines: str) -> Topology:
    return replace(TOPOLOGY, machines=machines)


SPREAD = across(apphost="m1", client="m2", shouthost="m3")


def test_a_lab_across_machines_adds_the_machine_rows() -> None:
    claims = {c.id for c in Failures().claims_for(SPREAD)}
    for column in COLUMNS:
        assert f"machine-lost.{column}" in claims
        assert f"machines-link-cut.{column}" in claims
    # One engine: no machine rows, and a schedule asking for one is refused.
    assert not any(c.id.startswith("machine") for c in Failures().claims_for(TOPOLOGY))
    with pytest.raises(ScheduleError, match="needs a lab across machines"):
        Failures((Row("r", "", "isolate", ("shouthost",)),)).claims_for(TOPOLOGY)


def test_a_machine_fault_strikes_only_hosts_off_the_clients_machine() -> None:
    # shouthost shares the client's machine: cutting machines apart does not reach it.
    shared = across(apphost="m1", client="m2", shouthost="m2")
    rows = {r.name: r for r in Failures().plan(shared)[0]}
    assert rows["machine-lost"].targets == ("apphost",)
    assert rows["machines-link-cut"].targets == ("apphost",)
    claims = {c.id for c in Failures().claims_for(shared)}
    assert "machine-lost.http" in claims
    assert "machine-lost.tcp-shout" not in claims
    # Every host on the client's machine: no machine rows at all.
    together = across(apphost="m1", client="m1", shouthost="m1")
    assert not any(r.fault in ("isolate", "sever") for r in Failures().plan(together)[0])


@pytest.mark.parametrize("fault", ["isolate", "sever"])
def test_machine_fault_cells_are_judged_and_can_fail(fault: str) -> None:
    rows = {r.name: r for r in Failures().plan(SPREAD)[0]}
    row = next(r for r in rows.values() if r.fault == fault)
    stream = expectation(row, COLUMNS["tcp-shout"])
    assert stream is not None
    assert judge(cell(), stream)  # silent, then the same connection carries on
    # What must not pass: an answer through the cut, a reset, a connection that died.
    assert not judge(cell(during="answered"), stream)
    assert not judge(cell(during="reset"), stream)
    assert not judge(cell(old_socket_works=False), stream)
    udp = expectation(row, COLUMNS["udp-shout-connected"])
    assert udp is not None
    assert judge(cell(late=[], lost=["x"]), udp)
    assert not judge(cell(during="refused", late=[], lost=["x"]), udp)


def test_each_struck_host_probes_a_host_on_a_third_machine() -> None:
    rows = Failures().plan(SPREAD)[0]
    probes = {(b.row, b.src, b.dst, b.port) for b in bystanders(rows, SPREAD)}
    assert probes == {
        (row, src, dst, port)
        for row in ("machine-lost", "machines-link-cut")
        for src, dst, port in (("apphost", "shouthost", 8080), ("shouthost", "apphost", 80))
    }
    claims = {c.id for c in Failures().claims_for(SPREAD)}
    assert "machines-link-cut.apphost-reaches-shouthost" in claims
    # No third machine (shouthost shares the client's): nothing to probe, no such claim.
    shared = across(apphost="m1", client="m2", shouthost="m2")
    assert bystanders(Failures().plan(shared)[0], shared) == []


@pytest.mark.parametrize(
    ("fault", "events", "held"),
    [
        ("sever", [ev("socket", "ok"), ev("connect", "ok")], True),
        # The severed machine could not reach the third one either: that was an isolate.
        ("sever", [ev("socket", "ok"), ev("connect", "timeout")], False),
        ("isolate", [ev("socket", "ok"), ev("connect", "timeout")], True),
        # An error is an answer: ECONNREFUSED is an RST that crossed the cut, and
        # EHOSTUNREACH an ICMP or a failed ARP; a lost machine sends nothing back.
        ("isolate", [ev("socket", "ok"), ev("connect", "ECONNREFUSED")], False),
        ("isolate", [ev("socket", "ok"), ev("connect", "EHOSTUNREACH")], False),
        # The isolated machine still reached a third one: it was not cut off from all.
        ("isolate", [ev("socket", "ok"), ev("connect", "ok")], False),
        ("isolate", [], False),  # no connect recorded: nothing observed, nothing held
    ],
)
def test_a_bystander_probe_is_judged_from_its_connect(
    fault: str, events: list[Event], held: bool
) -> None:
    assert judge_bystander(fault, events).held is held


def test_a_cell_with_no_receive_during_the_fault_is_not_judged() -> None:
    from lab.experiments.builtin.failures import derive, unjudged

    column = COLUMNS["udp-shout-connected"]
    sock = column.sock
    before = Event(0.1, "client", sock, "udp", "send", "", "", "ok", 3, "x", dt=0.0)
    after = Event(3.0, "client", sock, "udp", "recv", "", "", "ok", 3, "X", dt=0.0)
    empty = derive("r", column, [before, after], 1.0, 2.0)
    assert empty.during == "unseen"
    assert "not judged" in (unjudged(empty) or "")
    assert not judge(empty, EXPECTED[("kill", True, "udp-connected")])  # was "silent": held
    timed_out = Event(1.5, "client", sock, "udp", "recv", "", "", "timeout", None, None, dt=1.0)
    seen = derive("r", column, [before, timed_out, after], 1.0, 2.0)
    assert seen.during == "silent"
    assert unjudged(seen) is None


def test_a_freeze_of_a_host_and_its_process_is_judged_as_the_process_frozen() -> None:
    rows = resolved((Row("both", "", "pause", ("shouthost", "tcp-shout")),))
    frozen = expectation(rows["both"], COLUMNS["tcp-shout"])
    assert frozen is EXPECTED[("pause", False, "stream")]
    assert not judge(cell(during="silent"), EXPECTED[("pause", True, "stream")])
    # udp-shout is not frozen itself: its host's freeze leaves it answering.
    assert expectation(rows["both"], COLUMNS["udp-shout"]) is EXPECTED[("pause", True, "udp")]


def test_processes_are_struck_before_their_hosts() -> None:
    rows = resolved((Row("r", "", "kill", ("shouthost", "tcp-shout", "random-process")),))
    targets = rows["r"].targets
    assert targets[-1] == "shouthost"
    assert set(targets[:-1]) <= set(TOPOLOGY.processes)


def test_a_restart_that_does_not_settle_admits_the_gap_and_nothing_else() -> None:
    settled = Row("r", "", "restart", ("udp-shout",), settle=True)
    unsettled = Row("r", "", "restart", ("udp-shout",))
    refused = cell(during="refused", late=[], lost=["x"])
    connected = COLUMNS["udp-shout-connected"]
    # The schedule's row: a datagram in the gap drew ECONNREFUSED, then the same socket
    # worked; it used to fail "the restarted server answers at once".
    assert judge(refused, expectation(unsettled, connected))  # type: ignore[arg-type]
    assert not judge(refused, expectation(settled, connected))  # type: ignore[arg-type]
    gap = expectation(unsettled, connected)
    assert gap is not None
    assert not judge(replace(refused, old_socket_works=False), gap)
    lost = cell(during="silent", late=[], lost=["x"])
    assert judge(lost, expectation(unsettled, COLUMNS["udp-shout"]))  # type: ignore[arg-type]
    assert not judge(lost, expectation(unsettled, connected))  # type: ignore[arg-type]
    tcp = Row("r", "", "restart", ("tcp-shout",))
    assert expectation(tcp, COLUMNS["tcp-shout"]) == EXPECTED[("restart", False, "stream")]


SNMP = """Ip: Forwarding DefaultTTL
Ip: 1 64
Icmp: InMsgs OutMsgs OutRateLimitGlobal OutRateLimitHost OutDestUnreachs
Icmp: 0 {out} 0 {limited} {unreach}
IcmpMsg: OutType3
IcmpMsg: {unreach}
Udp: InDatagrams NoPorts InErrors OutDatagrams
Udp: {delivered} {noports} 0 9
UdpLite: InDatagrams NoPorts InErrors OutDatagrams
UdpLite: 0 0 0 0
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
 1: 00000000:{port} 00000000:0000 07 00000000:00000000 00:00000000 00000000 10001
"""


def snmp(unreach: int, limited: int, noports: int, delivered: int = 5, port: int = 0x1F90) -> str:
    return SNMP.format(
        out=unreach, unreach=unreach, limited=limited, noports=noports, delivered=delivered,
        port=f"{port:04X}",
    )  # fmt: skip


def test_the_struck_hosts_counters_are_read_from_proc() -> None:
    from lab.experiments.builtin.failures import kernel

    reading = kernel.parse(snmp(unreach=3, limited=1, noports=4))
    assert reading == {
        "counters": {
            "OutDestUnreachs": 3,
            "OutRateLimitGlobal": 0,
            "OutRateLimitHost": 1,
            "InDatagrams": 5,
            "NoPorts": 4,
            "InErrors": 0,
        },
        "udp_ports": [8080],
    }
    old_kernel = "Icmp: InMsgs OutDestUnreachs\nIcmp: 1 2\n"
    assert kernel.parse(old_kernel)["counters"] == {"OutDestUnreachs": 2}


@pytest.mark.parametrize(
    ("after", "says"),
    [
        (snmp(unreach=1, limited=1, noports=2, port=0x1F91), "1 ICMP held back by its rate"),
        (snmp(unreach=0, limited=0, noports=0, delivered=6), "a socket was still bound to 8080"),
        (snmp(unreach=2, limited=0, noports=2, port=0x1F91), "drew a port unreachable"),
        (snmp(unreach=0, limited=0, noports=0, port=0x1F91), "no datagram reached the host"),
    ],
)
def test_a_missed_refusal_cites_the_kernels_counters(after: str, says: str) -> None:
    from lab.experiments.builtin.failures import kernel

    before = kernel.parse(snmp(unreach=0, limited=0, noports=0))
    assert says in kernel.evidence(before, kernel.parse(after), 8080)
    assert "could not be read" in kernel.evidence(None, kernel.parse(after), 8080)


def test_a_refusal_not_seen_is_judged_failed_with_the_kernels_evidence() -> None:
    from lab.experiments.builtin.failures import kernel
    from lab.experiments.model import judge_result

    data = json.loads((ROOT / "tests/pure/fixtures/results/failures.json").read_text())
    claim = "process-crash.udp-shout-connected"
    target = next(c for c in data["facts"]["cells"] if f"{c['row']}.{c['client']}" == claim)
    for e in target["events"]:
        if e["outcome"] == "ECONNREFUSED":  # the ICMP never came: the receive timed out
            e.update(outcome="timeout", dt=1.0)
    data["facts"]["kernel"] = [
        {
            "row": "process-crash",
            "host": "shouthost",
            "before": kernel.parse(snmp(unreach=0, limited=0, noports=0)),
            "after": kernel.parse(snmp(unreach=1, limited=1, noports=2, port=0x1F91)),
        }
    ]
    check = next(c for c in judge_result(Failures(), data) if c.id == claim)
    assert not check.held
    assert "NoPorts+2" in check.observed
    assert "OutRateLimitHost+1" in check.observed


def test_the_matrix_refuses_a_client_on_another_kernel_before_sending_anything() -> None:
    from types import SimpleNamespace

    from lab.errors import ExperimentError
    from lab.experiments.model import Context

    asked: list[tuple[str, list[str]]] = []

    def run_in(host: str, argv: list[str]) -> bytes:
        asked.append((host, argv))
        return b"a-boot-of-another-machine\n"

    lab = SimpleNamespace(topology=TOPOLOGY, backend=SimpleNamespace(run_in=run_in))
    ctx = Context(lab)  # type: ignore[arg-type]
    with pytest.raises(ExperimentError, match="client's, which run on another kernel"):
        Failures().run(ctx)
    assert [host for host, _ in asked] == ["client"]  # nothing else was run
    assert ctx.facts["kernels"]["client"] == "a-boot-of-another-machine"


def test_a_saved_result_from_two_kernels_has_its_cells_not_judged() -> None:
    from lab.experiments.model import judge_result

    data = json.loads((ROOT / "tests/pure/fixtures/results/failures.json").read_text())
    data["facts"]["kernels"] = {"driver": "boot-a", "client": "boot-a"}
    assert all(c.judged and c.held for c in judge_result(Failures(), data))
    data["facts"]["kernels"]["client"] = "boot-b"
    checks = judge_result(Failures(), data)
    assert checks
    assert not any(c.judged or c.held for c in checks)
    assert "another kernel" in checks[0].observed
