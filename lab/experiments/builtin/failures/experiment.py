"""failures: what each client sees when a process dies, a host vanishes, a process freezes,
a network is cut, or a server restarts.

Each row of the matrix is one fault, applied to its targets at once and then
undone; each column is one client on the client host, holding its socket open
across the fault. The columns come from the topology: one per port a process
declares in a protocol the matrix can recognise an answer in (shout, echo,
http, resp); a UDP port gets two, an unconnected socket and a connected one
(``NAME-connected``). On the default lab:

  tcp-shout            an established TCP connection
  udp-shout            an unconnected UDP socket (sendto/recvfrom)
  udp-shout-connected  a connected UDP socket
  http                 a kept-alive HTTP/1.1 connection
  db                   a RESP connection

For every cell the timeline records what the next receive and sends returned
after the fault, when the client first noticed, which messages were lost or
answered late, and whether the old socket worked again after recovery or a new
one was needed. Waits are bounded (PROBE_TIMEOUT, AFTER_TIMEOUT): where TCP
would keep retransmitting for minutes, the cell says "no answer within N s".
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lab.experiments import clocks
from lab.experiments.builtin.failures import kernel
from lab.experiments.builtin.failures.expectations import claims_of, expectation
from lab.experiments.builtin.failures.judgement import derive, judge, unjudged, unrefused
from lab.experiments.builtin.failures.model import (
    DEFAULT_ROWS,
    MACHINE_ROWS,
    Cell,
    Column,
    Row,
    columns_of,
)
from lab.experiments.builtin.failures.probes import (
    BYSTANDER_KEYS,
    Bystander,
    bystanders,
    judge_bystander,
    run_probe,
)
from lab.experiments.builtin.failures.runner import (
    Step,
    phase_after,
    phase_before,
    phase_close,
    phase_during,
    sessions,
    shifted,
)
from lab.experiments.builtin.failures.schedule import draw_targets
from lab.experiments.builtin.failures.steps import Client
from lab.experiments.model import (
    Claim,
    Context,
    Experiment,
    Observations,
    Result,
    Verdict,
)
from lab.services.probes.sockscript import Event
from lab.topology import Topology


class Failures(Experiment):
    name = "failures"
    question = (
        "What does each client see when a process dies, a host vanishes, a process "
        "freezes, the network is cut, or the server restarts?"
    )
    timeline = False  # hundreds of events: the matrix and its pictures tell it better

    def __init__(self, rows: tuple[Row, ...] = DEFAULT_ROWS, seed: int = 0) -> None:
        self.rows = rows
        self.seed = seed
        self.on_cell: Callable[[Cell], None] = lambda cell: None

    def plan(self, topology: Topology) -> tuple[tuple[Row, ...], list[Column]]:
        rows = self.rows
        if rows == DEFAULT_ROWS and len(set(topology.machines.values())) > 1:
            rows = (*rows, *MACHINE_ROWS)
        return draw_targets(rows, self.seed, topology), columns_of(topology)

    def claims_for(self, topology: Topology) -> tuple[Claim, ...]:
        rows, columns = self.plan(topology)
        return (*claims_of(rows, columns), *(b.claim() for b in bystanders(rows, topology)))

    def run(self, ctx: Context) -> None:
        rows, columns = self.plan(ctx.lab.topology)
        cells: list[Cell] = []
        self.probed: list[dict[str, Any]] = []
        self.readings: list[dict[str, Any]] = []
        if not columns:  # no port in a protocol the matrix reads: nothing to judge (exit 6)
            rows = ()
        # One socket session per client on the client host, for the whole matrix (opening
        # them is most of a row's first second); each row closes the sockets it opened.
        host = ctx.lab.topology.client.name
        # Each cell is split at the driver's fault_at by times its client's socket script
        # took: one clock only if the client host runs on the driver's kernel. The test
        # cluster's machines are containers on one kernel, so there this always holds: it
        # covers the overlay's paths between machines, never two kernels' clocks.
        ctx.one_clock("the failure matrix's split of each client's events at the fault", [host])
        t0 = ctx.clock()
        with (
            ThreadPoolExecutor(max_workers=max(1, len(columns))) as pool,
            sessions(ctx, host, t0, len(columns), pool) as steps,
        ):
            for row in rows:
                for cell in self.run_row(ctx, row, columns, t0, steps, pool):
                    cells.append(cell)
                    self.on_cell(cell)
        ctx.facts["seed"] = self.seed
        ctx.facts["rows"] = [asdict(r) for r in rows]
        ctx.facts["columns"] = [asdict(c) for c in columns]
        ctx.facts["cells"] = [asdict(c) for c in cells]
        ctx.facts["bystanders"] = self.probed
        ctx.facts["kernel"] = self.readings

    def judge(self, seen: Observations) -> dict[str, Verdict]:
        rows = {r["name"]: Row(**{**r, "targets": tuple(r["targets"])}) for r in seen.facts["rows"]}
        columns = {c["name"]: Column(**c) for c in seen.facts["columns"]}
        readings = {(k["row"], k["host"]): k for k in seen.facts.get("kernel", [])}
        # A saved result whose client ran on another kernel than the driver: its cells'
        # split at fault_at compared two clocks (results recorded before this check
        # carry no kernels, and are judged as they were).
        kernels = dict(seen.facts.get("kernels", {}))
        here = kernels.pop("driver", None)
        apart = clocks.strangers(here, kernels) if here is not None else []
        verdicts = {}
        for data in seen.facts["cells"]:
            # Judged from the cell's recorded socket events, not from the labels the run
            # wrote beside them: the same derivation, again, from the observations.
            recorded = Cell.from_dict(data)
            cell = derive(
                recorded.row,
                columns[recorded.client],
                recorded.events,
                recorded.fault_at,
                recorded.recovered_at,
            )
            column = columns[cell.client]
            expect = expectation(rows[cell.row], column)
            if expect is None:
                continue
            why_not = clocks.refusal("this cell", apart) if apart else unjudged(cell)
            if why_not is not None:
                verdicts[f"{cell.row}.{cell.client}"] = Verdict(False, why_not, judged=False)
                continue
            observed = cell.summary()
            missed = unrefused(cell, column.sock)
            if expect.during == "refused" and missed:
                # A datagram that drew no refusal: the struck host's kernel says why.
                k = readings.get((cell.row, column.host), {})
                said = kernel.evidence(k.get("before"), k.get("after"), column.port)
                observed += f"; {missed} datagram(s) drew no refusal: {said}"
            verdicts[f"{cell.row}.{cell.client}"] = Verdict(judge(cell, expect), observed)
        for probe in seen.facts.get("bystanders", []):
            events = [Event(**e) for e in probe["events"]]
            verdict = judge_bystander(probe["fault"], events)
            where = f"{probe['src']} to {probe['dst']} ({probe['address']}:{probe['port']})"
            verdicts[Bystander(**{k: probe[k] for k in BYSTANDER_KEYS}).id] = Verdict(
                verdict.held, f"{where}: {verdict.observed}"
            )
        return verdicts

    def tables(self, result: Result) -> list[Any]:
        from lab.experiments.builtin.failures import view

        verdicts = {c.id: c.held for c in result.checks}
        return [view.matrix_table(result.facts["cells"], verdicts)]

    def pictures(self, result: Result, folder: Path, frames: list[Any] | None = None) -> list[Path]:
        """One PNG timeline per cell (with its frames, when captured)."""
        from lab.experiments.builtin.failures import picture
        from lab.packets import report as packet_report

        paths = []
        capture = result.capture or {}
        for data in result.facts["cells"]:
            cell = Cell.from_dict(data)
            marks = (
                packet_report.span_packets(
                    cell.events, cell.t0, frames, capture, result.lab["hosts"]
                )
                if frames
                else []
            )
            paths.append(
                picture.cell_timeline(cell, folder / f"{cell.row}-{cell.client}.png", marks)
            )
        return paths

    def run_row(
        self,
        ctx: Context,
        row: Row,
        columns: list[Column],
        t0: float,
        steps: list[Step],
        pool: ThreadPoolExecutor,
    ) -> list[Cell]:
        """One fault, and every client side by side, each in its own session (``steps``,
        their times counted from ``t0``): the phases (before, during, after) in step for
        all of them, so that each client meets the fault at the same moment and the row
        lasts as long as its slowest client, not as long as all of them in turn."""
        lab = ctx.lab
        start = ctx.clock() - t0  # this row's times are shifted to count from here
        clients = [Client(c, c.sock, address=lab.topology.hosts[c.host].ip) for c in columns]
        each = dict(zip((c.name for c in clients), steps, strict=True))

        def side_by_side(phase: Callable[[Client, Step], Any]) -> dict[str, Any]:
            done = pool.map(lambda c: phase(c, each[c.name]), clients)
            return dict(zip((c.name for c in clients), done, strict=True))

        # The hosts whose UDP servers the row strikes: their kernels' counters around it.
        struck = list(
            dict.fromkeys(
                c.host for c in columns if c.kind != "stream" and expectation(row, c) is not None
            )
        )
        # 1. connect, and one exchange each so every connection is known to work
        before = side_by_side(phase_before)
        ctx.wait(row.at)
        counted = kernel.read(ctx, struck)
        # 2. the fault, undone however this block ends
        with lab.fault(row.fault, *row.targets):
            fault_at = ctx.clock() - t0
            if row.settle:
                lab.wait_healthy()
            # The probes beside the clients, not after them: they would make the cut longer.
            probes = bystanders((row,), lab.topology)
            with ThreadPoolExecutor(max_workers=max(1, len(probes))) as beside:
                probing = [beside.submit(run_probe, ctx, p) for p in probes]
                during = side_by_side(phase_during)
                self.probed += [f.result() for f in probing]
            now = kernel.read(ctx, struck)  # the fault still in place
            self.readings += [
                {"row": row.name, "host": h, "before": counted[h], "after": now[h]} for h in struck
            ]
        recovered_at = ctx.clock() - t0
        # 3. after recovery: the same socket, then a new one
        after = side_by_side(phase_after)
        side_by_side(phase_close)  # (a row that fails ends the matrix: its sessions close then)
        cells = []
        for c in clients:
            old, _, new_events = after[c.name]
            events = [*before[c.name], *during[c.name], *old, *new_events]
            cell = derive(row.name, c.column, events, fault_at, recovered_at)
            cells.append(shifted(cell, start, t0))
        return cells
