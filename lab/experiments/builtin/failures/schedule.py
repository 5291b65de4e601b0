"""Fault schedules: rows read from a YAML file, and targets drawn with a seed."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import yaml

from lab.errors import ScheduleError
from lab.experiments.builtin.failures.model import (
    EVERY_HOST,
    EVERY_PROCESS,
    FAULTS,
    MACHINE_FAULTS,
    Row,
    columns_of,
    resolve_rows,
)
from lab.topology import Topology


def load_schedule(path: Path) -> tuple[list[Row], int]:
    """Rows from a YAML fault schedule, and its seed.

    seed: 7
    rows:
      - name: crash-one
        fault: kill                  # kill, stop, pause, cut (a host) or restart
        targets: [tcp-shout]         # or "random-process" / "random-host" (drawn with
        at: 0.5                      #   the seed), "every-process" / "every-host"
    """
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleError(f"cannot read schedule {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise ScheduleError(f"{path}: expected a mapping with a list of rows")
    seed = int(document.get("seed", 0))
    rows = []
    for i, item in enumerate(document["rows"]):
        try:
            targets = item["targets"]
            fault = str(item["fault"])
            rows.append(
                Row(
                    str(item.get("name", f"row-{i + 1}")),
                    str(item.get("title", "")),
                    fault,
                    (targets,) if isinstance(targets, str) else tuple(map(str, targets)),
                    float(item.get("at", 0.0)),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScheduleError(f"{path}: row {i + 1} is incomplete ({exc})") from None
        if fault not in FAULTS:
            raise ScheduleError(
                f"{path}: row {i + 1}: no fault {fault!r}", f"one of: {', '.join(FAULTS)}"
            )
    return rows, seed


def draw_targets(rows: tuple[Row, ...], seed: int, topology: Topology) -> tuple[Row, ...]:
    """``random-process``/``random-host`` drawn with the seed (a run replays exactly), and
    every named target checked against the topology."""
    columns = columns_of(topology)
    processes = list(dict.fromkeys(c.process for c in columns))
    hosts = list(dict.fromkeys(c.host for c in columns))
    rng = random.Random(seed)
    drawn = []
    for row in rows:
        targets: list[str] = []
        for target in row.targets:
            if target == "random-process":
                targets.append(rng.choice(processes))
            elif target == "random-host":
                targets.append(rng.choice(hosts))
            elif target in (EVERY_PROCESS, EVERY_HOST) or target in topology.services:
                targets.append(target)
            else:
                raise ScheduleError(
                    f"row {row.name}: no host or process {target!r}", f"known: {topology.known()}"
                )
        processes_named = [t for t in targets if t in topology.processes or t == EVERY_PROCESS]
        if row.fault in ("cut", *MACHINE_FAULTS) and processes_named:
            raise ScheduleError(f"row {row.name}: {row.fault} takes a host, not a process")
        if row.fault in MACHINE_FAULTS and not topology.machines:
            raise ScheduleError(
                f"row {row.name}: {row.fault} needs a lab across machines (--cluster)"
            )
        workbench = topology.client.name
        if workbench in targets:
            raise ScheduleError(
                f"row {row.name}: {workbench} is where the matrix's clients run",
                "fault the hosts and processes they talk to",
            )
        drawn.append(replace(row, targets=tuple(targets)))
    return resolve_rows(tuple(drawn), columns, topology)
