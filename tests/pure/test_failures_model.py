"""The failure matrix's reasoning, on recorded events: verdicts, answers, schedules, pictures."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.experiments.builtin.failures import (
    CLIENTS,
    DEFAULT_ROWS,
    EXPECTED,
    Cell,
    Client,
    Expect,
    Failures,
    Row,
    ScheduleError,
    answered_tags,
    during_verdict,
    expectation,
    judge,
    load_schedule,
)
from services.probes.sockscript import Event

ROOT = Path(__file__).resolve().parents[2]


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
    ],
)
def test_during_verdict(events: list[Event], verdict: str) -> None:
    assert during_verdict(events) == verdict


def test_answered_tags_per_protocol() -> None:
    tcp = Client("tcp", "tcp")
    assert answered_tags(
        tcp, b"TCP-DURING1TCP-AFTER", ["tcp-during1", "tcp-during2", "tcp-after"]
    ) == ["tcp-during1", "tcp-after"]
    resp = Client("resp", "resp")
    assert answered_tags(resp, b"$11\r\nresp-during\r\n", ["resp-during", "resp-after"]) == [
        "resp-during"
    ]
    http = Client("http", "http")
    two = b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
    assert answered_tags(http, two, ["a", "b", "c"]) == ["a", "b"]  # in order, by count


def cell(**overrides: object) -> Cell:
    base: dict[str, object] = dict(
        row="r",
        client="tcp",
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


def test_every_default_cell_has_an_expectation_and_a_claim() -> None:
    for row in DEFAULT_ROWS:
        for client in CLIENTS:
            assert expectation(row, client) is EXPECTED[(row.name, client)]
    assert len(Failures().claims) == len(DEFAULT_ROWS) * len(CLIENTS)


def test_the_seed_note_is_in_the_matrix() -> None:
    # "BrokenPipeError" writing to a dead TCP server; "udp works tho" after a restart.
    assert EXPECTED[("process-crash", "tcp")].during == "eof-then-epipe"
    assert EXPECTED[("restart", "udp")].during == "answered"
    assert EXPECTED[("restart", "tcp")].old is False


def test_a_scheduled_row_is_judged_only_where_it_strikes() -> None:
    row = Row("crash-one", "", "kill", ("tcp-shout",))
    assert expectation(row, "tcp") is EXPECTED[("process-crash", "tcp")]
    assert expectation(row, "udp") is None  # udp-shout was not touched
    host_row = Row("cut-app", "", "cut", ("apphost",))
    assert expectation(host_row, "http") is EXPECTED[("partition", "http")]
    assert expectation(host_row, "tcp") is None


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
    assert len(rows[1].targets) == 1


def test_bad_schedules_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rows:\n  - name: x\n")
    with pytest.raises(ScheduleError, match="row 1 is incomplete"):
        load_schedule(bad)
    bad.write_text("just text")
    with pytest.raises(ScheduleError, match="list of rows"):
        load_schedule(bad)


def test_cell_round_trips_through_json_and_draws(tmp_path: Path) -> None:
    from dataclasses import asdict

    from lab.views import plots

    events = [ev("send", "ok", 3), ev("recv", "eof", 0), ev("send", "EPIPE")]
    original = cell(events=events, during="eof-then-epipe", late=[], lost=["m"])
    again = Cell.from_dict(asdict(original))
    assert again == original
    png = plots.cell_timeline(again, tmp_path / "cell.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
