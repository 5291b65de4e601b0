"""db-kill's claims fail on the observations that used to pass them: a db that never
fsyncs, a kill that missed the writing, a torn record that db only said it dropped, and
times taken on two kernels. (The recorded run: tests/pure/fixtures/results/db-kill.json.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lab.experiments import EXPERIMENTS
from lab.experiments.builtin.db_kill.evidence import (
    across_kernels,
    begun_record,
    off_write,
    torn_tail,
)
from lab.experiments.model import Check, judge_result
from lab.services.protocols.resp import encode_command

RECORDED = Path(__file__).parent / "fixtures" / "results" / "db-kill.json"
TORN = b"*3\r\n$3\r\nSET\r\n$4\r\ntorn"  # what the experiment appends: a SET cut off mid-key


def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED.read_text())
    return copy.deepcopy(data)


def checks(data: dict[str, Any]) -> dict[str, Check]:
    return {c.id: c for c in judge_result(EXPERIMENTS["db-kill"], data)}


def judged(data: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {i: (c.held, c.observed) for i, c in checks(data).items()}


def statements() -> dict[str, str]:
    return {c.id: c.text for c in EXPERIMENTS["db-kill"].claims}


def test_the_recorded_run_holds_every_claim() -> None:
    assert all(held for held, _ in judged(recorded()).values())


# -- fsync: only the power cut can show it ---------------------------------------------


def test_an_acknowledged_write_lost_to_the_power_cut_under_always_fails() -> None:
    data = recorded()
    data["facts"]["power"]["always"].update(lost=12, window_s=0.3)
    held, observed = judged(data)["power-always"]
    assert not held
    assert "12 of" in observed


def test_process_kills_alone_make_no_claim_of_fsync_hold() -> None:
    """The old fsync-always held on the kill rows alone, which a db that never fsyncs
    passes too. Without the power row, nothing that promises an fsync holds."""
    data = recorded()
    del data["facts"]["power"]
    verdicts = judged(data)
    assert verdicts["fsync-always"][0]  # what a kill does show: the kernel had the bytes
    promised = [c for c, text in statements().items() if "fsynced before" in text]
    assert promised == ["power-always"]
    for claim in promised:
        held, observed = verdicts[claim]
        assert not held
        assert observed.startswith("not observed")


def test_a_db_that_never_fsyncs_passes_only_what_a_kill_shows() -> None:
    data = recorded()
    always = data["facts"]["power"]["always"]
    always.update(fsyncs=0, lost=always["acked_before"], window_s=2.9)
    verdicts = judged(data)
    assert not verdicts["power-always"][0]
    held = [c for c, (ok, _) in verdicts.items() if ok]
    assert not any("fsynced before" in statements()[c] for c in held), held


# -- each kill lands while the writer writes -------------------------------------------


def test_a_kill_after_the_writer_finished_does_not_hold() -> None:
    data = recorded()
    run = data["facts"]["runs"]["always"]
    run["kills_at"][-1] = run["last_ack_at"] + 1.0  # no break can follow: it had stopped
    run["broken_at"] = [b for b in run["broken_at"] if b < run["kills_at"][-1]]
    held, observed = judged(data)["fsync-always"]
    assert not held
    assert "after the last acknowledgement" in observed


def test_a_kill_before_the_writer_started_does_not_hold() -> None:
    data = recorded()
    run = data["facts"]["runs"]["everysec"]
    run["kills_at"][0] = run["first_ack_at"] - 0.5
    held, observed = judged(data)["fsync-everysec"]
    assert not held
    assert "before the first acknowledgement" in observed


def test_a_kill_that_broke_no_connection_does_not_hold() -> None:
    """`broken` was recorded and never judged: fewer breaks than kills passed."""
    data = recorded()
    run = data["facts"]["runs"]["no"]
    first, second = run["kills_at"][:2]
    run["broken_at"] = [b for b in run["broken_at"] if not first < b < second]
    assert not judged(data)["fsync-no"][0]


@pytest.mark.parametrize("policy", ["always", "everysec", "no"])
def test_a_power_cut_after_the_writer_finished_does_not_hold(policy: str) -> None:
    data = recorded()
    p = data["facts"]["power"][policy]
    p["cut_at"] = p["last_ack_at"] + 1.0
    p["broken_at"] = []
    held, observed = judged(data)[f"power-{policy}"]
    assert not held
    assert "the cut missed the writing" in observed


@pytest.mark.parametrize(
    ("kills_at", "broken_at", "missed"),
    [
        ([2.0, 4.0], [2.1, 4.1], []),
        ([0.5, 4.0], [0.6, 4.1], ["kill 1 came 0.50 s before the first acknowledgement"]),
        ([2.0, 4.0], [4.1], ["kill 1 broke no connection of the writer"]),  # its break is 2's
        ([2.0, 9.0], [2.1], ["kill 2 broke no connection of the writer, 1.00 s after the last"]),
        ([2.0], [1.9], ["kill 1 broke no connection of the writer"]),  # a break before it
    ],
)
def test_off_write(kills_at: list[float], broken_at: list[float], missed: list[str]) -> None:
    said = off_write(kills_at, 1.0, 8.0, broken_at)
    assert len(said) == len(missed)
    assert all(s.startswith(m) for s, m in zip(said, missed, strict=True))


def test_a_writer_with_no_acknowledgement_shows_no_kill_landing() -> None:
    assert off_write([1.0], None, None, [1.1]) == ["the writer had no write acknowledged"]


# -- torn-record: the log's bytes, not db's word ----------------------------------------


def _torn(data: dict[str, Any], tail: bytes) -> None:
    data["facts"]["torn"]["tail"] = tail.hex()


def test_torn_record_holds_without_anything_db_said() -> None:
    data = recorded()
    assert "said" not in data["facts"]["torn"]
    assert judged(data)["torn-record"][0]


@pytest.mark.parametrize(
    "tail",
    [
        encode_command("SET", "torn", "x"),  # a whole record: db would replay it
        b"\x00\x00garbage",  # no record at all
        b"",  # nothing was appended
    ],
)
def test_torn_record_fails_unless_the_tail_is_an_unfinished_record(tail: bytes) -> None:
    data = recorded()
    _torn(data, tail)
    assert not judged(data)["torn-record"][0]


def test_torn_record_fails_when_the_tail_stays_in_the_file() -> None:
    data = recorded()
    torn = data["facts"]["torn"]
    torn["log_bytes_after"] = torn["log_bytes"] + len(TORN)
    held, observed = judged(data)["torn-record"]
    assert not held
    assert f"the log was {torn['log_bytes_after']} bytes" in observed


@pytest.mark.parametrize(
    ("tail", "wrong"),
    [
        (TORN, None),
        (encode_command("SET", "k", "v")[:-3], None),
        (encode_command("SET", "k", "v"), "1 whole record(s), which a replay applies"),
        (b"hello\r\n", "bytes that are no record at all (garbage, not a torn record)"),
        (b"", "nothing past the intact log"),
    ],
)
def test_torn_tail(tail: bytes, wrong: str | None) -> None:
    assert torn_tail(tail) == wrong


# -- times on two kernels are not compared ---------------------------------------------


@pytest.mark.parametrize(
    ("kernels", "why"),
    [
        ({"driver": "boot-a", "client": "boot-b"}, "client ran on another kernel"),
        ({"client": "boot-a"}, "the kernels the times were taken on were not recorded"),
    ],
)
def test_times_taken_on_two_kernels_are_not_judged(kernels: dict[str, str], why: str) -> None:
    data = recorded()
    data["facts"]["kernels"] = kernels
    found = checks(data)
    for claim in (c for c in found if c != "torn-record"):
        assert not found[claim].judged
        assert not found[claim].held
        assert found[claim].observed.startswith(f"not judged: {why}"), found[claim].observed
    assert found["torn-record"].judged
    assert found["torn-record"].held  # the log's bytes need no clock


def test_across_kernels() -> None:
    assert across_kernels({"driver": "a", "client": "a"}) is None
    assert across_kernels({"driver": "a", "client": "b", "db": "a"}) == (
        "client ran on another kernel than the driver: their times and the driver's are "
        "not on one clock"
    )
    assert across_kernels({"client": "a"}) is not None  # the driver's own: unrecorded
    # A result from before kernels were recorded is judged as it was (the failure matrix
    # does the same): it carries no word on its clocks either way.
    assert across_kernels(None) is None


@pytest.mark.parametrize(
    ("data", "begun"),
    [
        (TORN, True),
        (b"*", True),
        (b"*3\r", True),
        (b"*3\r\n", True),
        (b"*3\r\n$3\r\nSE", True),
        (b"*3\r\n$3\r\nSET\r", True),
        (encode_command("SET", "k", "v"), False),  # whole: not torn
        (b"\x00\x00garbage", False),  # a resp parser would wait for more of this
        (b"*3\r\n+OK\r\n", False),  # not a bulk string
        (b"*x\r\n", False),
        (b"*3\r\n$3\r\nSETxx", False),  # the bytes overrun their length
        (b"*0\r\n", False),
    ],
)
def test_begun_record(data: bytes, begun: bool) -> None:
    assert begun_record(data) is begun
