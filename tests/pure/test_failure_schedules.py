"""Every fault schedule a user can write is judged by what the kernel can do at its timing.

Schedules are drawn as YAML files (faults, targets, ``at``), read by ``load_schedule`` and
resolved on the default topology as ``lab run failures --schedule`` does. For every cell
a row strikes, each outcome the kernel can produce there must be admitted by the cell's
expectation (the kernel doing right never fails a claim), and each outcome it cannot
produce must be refused (every claim can fail).

KERNEL below is that model, written out as a table: what one client sees, by what the row
does to its server, its kind of socket, and the timing. It is a model, stated so that it
can be argued with:
- A fault is wholly in place before the first probe: the engine's kill, stop, pause,
  restart and disconnect return once done, and ``fault_at`` is taken after them. ``at``
  only delays the fault after the clients' first exchange, with their sockets idle; the
  probes then last about 2 s, less than any kernel timer that would change what they see
  (a neighbour entry's 5 s before its first probe, TCP's keepalive, conntrack's UDP
  timeouts). So ``at`` moves no cell from one outcome to another.
- A restart is the one fault with a second moment: the new process binds its port some
  time after its container starts. The default row waits for the lab to be healthy
  (``settle``); a schedule's row cannot, and its probes may fall in that gap.
- ICMP port unreachable is sent for every datagram that finds no socket: on the default
  topology a row draws at most 4 at once towards the client, within the kernel's
  per-destination burst of 6 (net.ipv4.icmp_ratelimit 1000 ms, XRLIM_BURST_FACTOR 6).
  ``test_a_row_draws_no_more_icmp_than_the_burst`` checks that bound on the topology.
- A restarted or returning host keeps its IP; that its neighbours reach it at once
  (a new MAC announced, or the same one) is assumed here, not observed: no built-in row
  restarts a host.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.errors import ScheduleError
from lab.experiments.builtin.failures import (
    DEFAULT_ROWS,
    Cell,
    Column,
    Expect,
    Row,
    columns_of,
    draw_targets,
    expectation,
    judge,
    load_schedule,
)
from lab.topology import from_config

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = from_config(json.loads((ROOT / "tests/pure/fixtures/compose/default.json").read_text()))
COLUMNS = columns_of(TOPOLOGY)

# An outcome: what the held socket saw during the fault, whether it worked after recovery,
# whether a new socket did, and what became of the messages sent during the fault
# ("late": answered after it; "lost"; "none": none left waiting).
Outcome = tuple[str, bool, bool, str]
DURING = ("answered", "refused", "silent", "eof-then-epipe", "eof-then-silent", "reset")
UNIVERSE: list[Outcome] = list(
    product(DURING, (True, False), (True, False), ("late", "lost", "none"))
)

LOST_DATAGRAM = {"udp": ("silent", True, True, "lost"), "udp-connected": ("refused", True, True, "lost")}  # fmt: skip
GONE: dict[str, set[Outcome]] = {
    "stream": {("eof-then-epipe", False, True, "lost")},
    "udp": {LOST_DATAGRAM["udp"]},
    "udp-connected": {LOST_DATAGRAM["udp-connected"]},
}
SILENT_LOST = {("silent", True, True, "lost")}
KERNEL_SETTLED: dict[str, set[Outcome]] = {
    "stream": GONE["stream"],
    "udp": {("answered", True, True, "none")},
    "udp-connected": {("answered", True, True, "none")},
}
KERNEL: dict[tuple[str, str, str], set[Outcome]] = {
    **{("process-gone", kind, "any"): GONE[kind] for kind in GONE},
    ("host-gone", "stream", "any"): {("eof-then-silent", False, True, "lost")},
    ("host-gone", "udp", "any"): SILENT_LOST,
    ("host-gone", "udp-connected", "any"): SILENT_LOST,
    **{("frozen", kind, "any"): {("silent", True, True, "late")} for kind in GONE},
    **{("untouched", kind, "any"): {("answered", True, True, "none")} for kind in GONE},
    ("cut", "stream", "any"): {("silent", True, True, "late")},
    ("cut", "udp", "any"): SILENT_LOST,
    ("cut", "udp-connected", "any"): SILENT_LOST,
    ("restarted", "stream", "gap"): GONE["stream"],
    **{("restarted", kind, "settled"): KERNEL_SETTLED[kind] for kind in GONE},
    # In the gap the first datagram finds no socket (lost, or refused on a connected
    # socket); the second may already be answered; or the new process was up in time.
    **{
        ("restarted", kind, "gap"): {
            ("answered", True, True, "none"),
            ("answered", True, True, "lost"),
            LOST_DATAGRAM[kind],
        }
        for kind in ("udp", "udp-connected")
    },
    # A host restarted may come back with a new MAC: the client's datagrams go to the old
    # one, unanswered, until its kernel resolves the address again.
    **{
        ("host-restarted", kind, "gap"): {
            ("answered", True, True, "none"),
            ("answered", True, True, "lost"),
            LOST_DATAGRAM[kind],
            ("silent", True, True, "lost"),
        }
        for kind in ("udp", "udp-connected")
    },
    ("host-restarted", "stream", "gap"): GONE["stream"],
    **{("host-restarted", kind, "settled"): KERNEL_SETTLED[kind] for kind in GONE},
}


def effect(row: Row, column: Column) -> str | None:
    """What the row does to this client's server, from its targets alone."""
    on_host, on_process = column.host in row.targets, column.process in row.targets
    if not (on_host or on_process):
        return None
    if row.fault == "pause":
        return "frozen" if on_process else "untouched"
    if row.fault == "restart" and on_host:
        return "host-restarted"
    return {"kill": "gone", "stop": "gone", "cut": "cut", "restart": "restarted"}[
        row.fault
    ].replace("gone", "host-gone" if on_host else "process-gone")


def timing(row: Row) -> str:
    if row.fault != "restart":
        return "any"
    return "settled" if row.settle else "gap"


def as_cell(outcome: Outcome) -> Cell:
    during, old, new, fate = outcome
    return Cell(
        row="r",
        client="c",
        during=during,
        noticed_after_s=None,
        old_socket_works=old,
        new_socket_works=new,
        lost=["m"] if fate == "lost" else [],
        late=["m"] if fate == "late" else [],
        events=[],
        fault_at=1.0,
        recovered_at=2.0,
    )


def admitted(expect: Expect) -> set[Outcome]:
    return {o for o in UNIVERSE if judge(as_cell(o), expect)}


def check_rows(rows: tuple[Row, ...]) -> int:
    """Every struck cell of ``rows`` against the kernel's table; how many were checked."""
    checked = 0
    for row in rows:
        for column in COLUMNS:
            expect, does = expectation(row, column), effect(row, column)
            assert (expect is None) == (does is None), (row, column.name)
            if expect is None or does is None:
                continue
            possible = KERNEL[(does, column.kind, timing(row))]
            allowed = admitted(expect)
            # Completeness: whatever the kernel can do here is judged right.
            assert possible <= allowed, (row, column.name, possible - allowed)
            # Soundness: nothing it cannot do passes, beyond the fates of the messages
            # sent during the fault when the expectation leaves them open.
            loose = {(d, o, n) for d, o, n, _ in possible} if expect.late is None else None
            for outcome in allowed - possible:
                assert loose is not None, (row, column.name, outcome)
                assert outcome[:3] in loose, (row, column.name, outcome)
            checked += 1
    return checked


TARGETS = [*TOPOLOGY.hosts, *TOPOLOGY.processes, "random-process", "random-host"]
TARGETS += ["every-process", "every-host"]
ROW = st.fixed_dictionaries(
    {
        "fault": st.sampled_from(["kill", "stop", "pause", "cut", "restart"]),
        "targets": st.lists(st.sampled_from(TARGETS), min_size=1, max_size=4),
    },
    optional={"at": st.floats(0, 30, allow_nan=False)},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_every_cell_of_every_schedule_admits_what_the_kernel_can_do(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, object]], seed: int
) -> None:
    document = {"seed": seed, "rows": [{"name": f"row-{i}", **r} for i, r in enumerate(rows)]}
    path = tmp_path_factory.mktemp("schedule") / "schedule.yaml"
    path.write_text(yaml.safe_dump(document))
    loaded, seed_read = load_schedule(path)
    try:
        drawn = draw_targets(tuple(loaded), seed_read, TOPOLOGY)
    except ScheduleError:
        return  # refused before anything runs: it produces no timing at all
    check_rows(drawn)


def test_the_default_rows_and_the_restart_the_issue_tried() -> None:
    assert check_rows(draw_targets(DEFAULT_ROWS, 0, TOPOLOGY)) == 30
    # The schedule that was tried: restart udp-shout, no ``at``, no settling.
    tried = draw_targets((Row("restart-udp", "", "restart", ("udp-shout",)),), 0, TOPOLOGY)
    assert check_rows(tried) == 2
    connected = next(c for c in COLUMNS if c.kind == "udp-connected")
    expect = expectation(tried[0], connected)
    assert expect is not None
    assert judge(as_cell(("refused", True, True, "lost")), expect)


def test_the_table_can_tell_a_wrong_expectation() -> None:
    # An expectation that forgot the gap (what the matrix had) fails the completeness check.
    row = Row("restart-udp", "", "restart", ("udp-shout",))
    connected = next(c for c in COLUMNS if c.kind == "udp-connected")
    narrow = Expect("answered", True, None, "")
    assert not KERNEL[(effect(row, connected) or "", "udp-connected", timing(row))] <= admitted(
        narrow
    )


def test_a_row_draws_no_more_icmp_than_the_burst() -> None:
    # Each UDP column sends two datagrams while the fault is in place; on a host whose
    # server is gone each draws a port unreachable to the one client host.
    per_host: dict[str, int] = {}
    for column in COLUMNS:
        if column.kind != "stream":
            per_host[column.host] = per_host.get(column.host, 0) + 2
    assert max(per_host.values()) <= 6


def test_the_example_schedules_for_the_default_lab_pass_the_table() -> None:
    for name in ("one-at-a-time.yaml", "restart-gap.yaml"):
        rows, seed = load_schedule(ROOT / "examples/schedules" / name)
        assert check_rows(draw_targets(tuple(rows), seed, TOPOLOGY)) > 0, name
