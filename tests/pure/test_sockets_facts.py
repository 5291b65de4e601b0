"""The sockets experiment's waits: the state each step awaits, read from the recorded run's
tables; polling to a deadline on a clock of its own; and a claim that fails while the state
it rests on never showed, said to be not observed. (Fixture: results/sockets.json.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lab.experiments import EXPERIMENTS
from lab.experiments.builtin.sockets_facts import (
    DEADLINE,
    POLL,
    Reading,
    close_wait_shown,
    listed,
    restart_shown,
    time_wait_shown,
    until_shown,
    waited,
)
from lab.experiments.model import judge_result

FIXTURE = Path(__file__).parent / "fixtures" / "results" / "sockets.json"
RECORDED: dict[str, Any] = json.loads(FIXTURE.read_text())
SNAPSHOTS = RECORDED["facts"]["snapshots"]
CLIENT, SERVER = RECORDED["facts"]["client"], RECORDED["facts"]["server"]
PORT = int(RECORDED["facts"]["script_port"])


def connected(sock: str) -> str:
    """The client's address for ``sock``, as its connect() saw it."""
    return next(
        str(e["local"]) for e in RECORDED["events"] if e["sock"] == sock and e["op"] == "connect"
    )


def test_each_state_awaited_shows_in_its_reading_and_not_in_the_one_before() -> None:
    a, d, e = connected("a"), connected("d"), connected("e")
    assert time_wait_shown(SNAPSHOTS["closed-first"], CLIENT, SERVER, a)
    assert not time_wait_shown(SNAPSHOTS["held"], CLIENT, SERVER, a)  # still ESTABLISHED
    assert close_wait_shown(SNAPSHOTS["close-wait"], CLIENT, SERVER, d)
    assert not close_wait_shown(SNAPSHOTS["closed-first"], CLIENT, SERVER, d)  # not yet made
    assert restart_shown(SNAPSHOTS["restart"], SERVER, e, PORT)
    assert not restart_shown(SNAPSHOTS["restart"], SERVER, d, PORT)  # another connection
    assert listed(SNAPSHOTS["peer-dead"], CLIENT, local=connected("f"), state="CLOSE_WAIT")
    assert not listed(SNAPSHOTS["after-epipe"], CLIENT, local=connected("f"))  # reset: no table


def test_a_closer_caught_before_the_peers_fin_is_not_time_wait_yet() -> None:
    a = connected("a")
    early = copy.deepcopy(SNAPSHOTS["closed-first"])
    next(r for r in early[CLIENT] if r["local"] == a).update(state="FIN_WAIT2")
    assert not time_wait_shown(early, CLIENT, SERVER, a)
    gone = copy.deepcopy(SNAPSHOTS["closed-first"])
    gone[SERVER].append({**gone[CLIENT][0], "state": "LAST_ACK", "remote": a})
    assert not time_wait_shown(gone, CLIENT, SERVER, a)  # the server's end not yet gone


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds

    def read(self) -> Reading:
        self.reads += 1
        self.now += 0.1  # a reading takes a docker exec
        return {"t": self.now, "n": self.reads}


def test_polling_stops_as_soon_as_the_state_shows() -> None:
    ctx = FakeClock()
    taken, wait = until_shown(ctx.read, lambda t: t["n"] >= 3, "the third reading", ctx)
    assert (taken["n"], wait["reached"], wait["want"]) == (3, True, "the third reading")
    assert wait["after_s"] == pytest.approx(0.3 + 2 * POLL)


def test_a_state_that_never_shows_stops_at_the_deadline_with_the_last_reading() -> None:
    ctx = FakeClock()
    taken, wait = until_shown(ctx.read, lambda t: False, "never", ctx)
    assert wait["reached"] is False
    assert DEADLINE <= wait["after_s"] < DEADLINE + 0.2
    assert taken["n"] == ctx.reads  # the last reading is the one kept


def judged(data: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {c.id: (c.held, c.observed) for c in judge_result(EXPERIMENTS["sockets"], data)}


def with_wait(reached: bool, fin_wait2: bool) -> dict[str, Any]:
    data = copy.deepcopy(RECORDED)
    data["facts"]["waits"] = {
        "closed-first": {"want": "a in TIME_WAIT", "reached": reached, "after_s": 5.0,
                         "deadline_s": 5.0},
    }  # fmt: skip
    if fin_wait2:
        rows = data["facts"]["snapshots"]["closed-first"][CLIENT]
        next(r for r in rows if r["local"] == connected("a")).update(state="FIN_WAIT2")
    return data


def test_a_claim_failing_on_a_state_that_never_showed_is_not_observed() -> None:
    verdicts = judged(with_wait(reached=False, fin_wait2=True))
    held, observed = verdicts["time-wait"]
    assert not held
    assert observed.startswith("not observed: a in TIME_WAIT, within 5.0 s (then: ")
    assert "FIN_WAIT2" in observed  # what the last reading showed is still said
    assert all(h for claim, (h, _) in verdicts.items() if claim != "time-wait")


def test_the_wait_only_explains_a_failure_never_makes_or_unmakes_one() -> None:
    held, observed = judged(with_wait(reached=True, fin_wait2=True))["time-wait"]
    assert not held
    assert "not observed" not in observed
    # The evidence in the reading holds although the poll gave up: judged as it is.
    held, observed = judged(with_wait(reached=False, fin_wait2=False))["time-wait"]
    assert held
    assert "not observed" not in observed


def test_a_tables_title_says_how_its_reading_was_waited_for() -> None:
    facts = with_wait(reached=False, fin_wait2=False)["facts"]
    assert waited(facts, "closed-first") == "; NOT shown within 5.0 s: a in TIME_WAIT"
    facts["waits"]["closed-first"].update(reached=True, after_s=0.012)
    assert waited(facts, "closed-first") == ", shown after 12.0 ms"
    assert waited(facts, "held") == ""
