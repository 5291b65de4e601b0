"""What a benchmark is and reports, the arithmetic of repeats, and the containers benches add.

Every figure is measured side by side with its peer in one run, repeated, and reported as
a median with its spread (lowest and highest). A figure that could not be had is an
error, never a silently dropped row.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.names import label
from lab.waiting import wait_until

if TYPE_CHECKING:  # the Docker side is imported when a benchmark runs, not by the parser
    from lab.backends.engine import Engine
    from lab.engine import helpers

PURPOSE = "bench"  # the label of every container a benchmark starts (removed at the end)


class BenchError(LabError):
    """A benchmark could not measure what it promised."""


@dataclass
class Bench:
    name: str
    target: str
    met: bool | None  # None: no target, or not measurable here (the summary says why)
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    why: str = ""  # when missed: where the time goes, measured, and what was tried


@dataclass(frozen=True)
class Sizes:
    seconds: float = 2.0  # each measured run of a load: long enough to be stable
    repeats: int = 5  # interleaved repetitions per configuration
    connections: int = 10_000
    active: int = 100
    rounds: int = 100
    rates: tuple[int, ...] = (2_000, 5_000, 10_000, 20_000, 40_000, 80_000)
    curves: int = 2  # the UDP curve is drawn this many times: its onset must agree
    bisections: int = 5  # rates measured between the grid's two around each onset
    added_hosts: tuple[int, ...] = (0, 10, 30)  # scale: hosts added, one UDP process each
    starts: int = 10  # start: runs of each command timed
    frames: int = 100_000
    labs: int = 30  # density: the largest K
    idle_seconds: float = 60.0  # density: the window idle CPU is measured over (2 intervals)
    budget_seconds: float = 2400.0  # density: its own time limit
    keep: bool = False  # density: leave the labs up (`lab ls`; `lab down --all` removes them)

    @classmethod
    def tiny(cls) -> Sizes:
        """Each benchmark's machinery, on sizes that only show it runs (the test tier)."""
        return cls(
            seconds=0.3,
            repeats=2,
            connections=50,
            active=5,
            rounds=5,
            rates=(500, 1_000),
            curves=1,
            bisections=1,
            added_hosts=(0, 2),
            starts=3,
            frames=2_000,
            labs=2,
            idle_seconds=5.0,
            budget_seconds=600.0,
        )


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise BenchError("nothing was measured")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def text(self, digits: int = 2, unit: str = "") -> str:
        return (
            f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f}, "
            f"n={self.n})"
        )

    def json(self) -> dict[str, float]:
        return {"median": self.median, "low": self.low, "high": self.high, "n": self.n}


MET, CROSSES, MISSED = "met", "median met, spread crosses", "missed"


def verdict(spread: Spread, goal: float, *, at_least: bool) -> str:
    """A goal is met only when the whole spread meets it (``at_least``: the lowest
    repetition; otherwise the highest); a median that meets it with a repetition that does
    not is "median met, spread crosses", never "met". Pure."""
    worst = spread.low if at_least else spread.high
    if (worst >= goal) if at_least else (worst <= goal):
        return MET
    return CROSSES if ((spread.median >= goal) if at_least else (spread.median <= goal)) else MISSED


def companion(
    backend: Engine,
    name: str,
    host: str,
    argv: list[str],
    *,
    environment: dict[str, str] | None = None,
    data_volume: bool = False,
) -> helpers.Helper:
    """A process of the lab's image in ``host``'s namespaces, hardened like every lab
    process, labelled so that the end of the benchmark, or `lab down`, removes it."""
    from lab.engine import helpers

    return helpers.start_process(
        backend,
        host,
        f"{backend.topology.project}-bench-{name}",
        argv,
        PURPOSE,
        environment=environment,
        data_volume=data_volume,
    )


def remove(processes: Iterable[helpers.Helper]) -> None:
    for process in processes:
        process.remove()


def cleanup(backend: Engine) -> None:
    """Every container a benchmark started, whoever started it (an interrupted run's too)."""
    from lab.engine import helpers

    helpers.remove_all(backend, [f"{label('purpose')}={PURPOSE}"])


def until(check: Any, what: str, seconds: float = 30) -> None:
    wait_until(check, seconds, what, poll=0.2)
