"""Benchmark plumbing that needs no lab: parsing, spreads, onsets, and the page from the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.bench import BenchError, Spread, report
from lab.bench import redis as redis_bench
from lab.bench import udp as udp_bench
from lab.services.probes.loadgen import percentile
from lab.services.probes.writer import ranges

ROOT = Path(__file__).resolve().parents[2]

CSV = """"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","98039.22","0.287","0.080","0.263","0.431","0.623","1.151"
"GET","104166.67","0.265","0.072","0.247","0.399","0.551","0.871"
"""


def test_redis_benchmark_csv() -> None:
    assert redis_bench.parse(CSV) == {"SET": 98039.22, "GET": 104166.67}
    assert redis_bench.parse("") == {}


def test_a_spread_of_nothing_is_an_error_not_a_zero() -> None:
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(2.0, 1.0, 3.0, 3)
    with pytest.raises(BenchError):
        Spread.of([])


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([5.0], 0.99, 5.0),
        (list(map(float, range(1, 101))), 0.5, 50.0),
        (list(map(float, range(1, 101))), 0.99, 99.0),
        (list(map(float, range(100, 0, -1))), 0.99, 99.0),
    ],
)
def test_percentile_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


def test_acknowledged_numbers_as_ranges() -> None:
    assert ranges([0, 1, 2, 5, 6, 9]) == [[0, 2], [5, 6], [9, 9]]
    assert ranges([]) == []


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([0.0, 0.0, 0.005], None),  # under 1% everywhere: no onset
        ([0.0, 0.02, 0.5], 2000),  # the first rate past 1%
        ([0.011, 0.0, 0.0], 1000),  # even a first point can be the onset
    ],
)
def test_udp_loss_onset(losses: list[float], expected: int | None) -> None:
    points = [{"rate": 1000 * (i + 1), "loss": loss} for i, loss in enumerate(losses)]
    assert udp_bench.onset(points) == expected


MEASURED = {"command": "lab bench", "machine": "Linux 6.x, 2 CPUs", "date": "2026-11-27"}


def _run(benchmarks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"json": "benchmarks/results/latest.json", "benchmarks": benchmarks}


def _bench(
    name: str, met: bool | None, summary: str, commit: str = "abc1234", **extra: Any
) -> dict[str, Any]:
    return {
        "name": name, "target": "t", "met": met, "summary": summary, "data": {},
        "measured": {**MEASURED, "commit": commit}, **extra,
    }  # fmt: skip


def test_the_page_says_what_was_missed_and_why() -> None:
    text = report.render(
        _run(
            [
                _bench("up", False, "lab up 2.4 s", why="compose create: 1.6 s of it"),
                _bench("udp", None, "onset at 20000"),
                _bench("c10k", True, "10000 held"),
            ]
        )
    )
    run = "| `lab bench`, 2026-11-27, abc1234 |"
    assert f"| up | t | **no** | lab up 2.4 s {run}" in text
    assert f"| udp | t | - | onset at 20000 {run}" in text
    assert f"| c10k | t | yes | 10000 held {run}" in text
    assert "- **up**: compose create: 1.6 s of it" in text
    assert "Linux 6.x, 2 CPUs" in text


def test_the_page_has_no_why_section_when_all_is_met() -> None:
    assert "Why targets are missed" not in report.render(_run([_bench("c10k", True, "ok")]))


def test_the_udp_table_shows_achieved_rates_not_the_asked_ones() -> None:
    point = {
        "rate": 40000,
        "sent_rate": 32500,
        "received_rate": 30000,
        "loss": 0.0769,
        "server_drops": 2500,
        "client_drops": 0,
    }
    bench = _bench("udp", None, "s")
    bench["data"] = {"curves": [{"points": {"udp-shout": [point]}}]}
    assert "| 1 | udp-shout | 40000 | 32500 | 30000 | 7.7% | 2500 | 0 |" in report.render(
        _run([bench])
    )


def test_a_run_of_some_benchmarks_keeps_the_others_latest_rows() -> None:
    earlier = _run([_bench("redis", False, "old", "c1"), _bench("density", False, "d", "c0")])
    merged = report.merge(earlier, [_bench("redis", False, "new", "c2")], ["redis", "density"])
    assert [(b["name"], b["summary"], b["measured"]["commit"]) for b in merged] == [
        ("redis", "new", "c2"),
        ("density", "d", "c0"),
    ]
    legacy = {"benchmarks": [{"name": "udp", "summary": "no provenance"}]}  # an old file
    assert report.merge(legacy, [], ["udp"]) == []


def test_benchmarks_md_is_exactly_what_the_committed_json_renders_to() -> None:
    run = json.loads((ROOT / "benchmarks/results/latest.json").read_text())
    assert (ROOT / "BENCHMARKS.md").read_text() == report.render(run), (
        "BENCHMARKS.md differs from its JSON: run `socklab bench --markdown BENCHMARKS.md` "
        "(never edit the page by hand)"
    )


def test_a_missed_curriculum_names_its_slowest_experiments_and_the_windows_they_need() -> None:
    from lab.bench.speed import curriculum_why

    text = curriculum_why({"dispatch": 2.0, "failures": 19.0, "db-kill": 27.0, "sockets": 5.0})
    assert text.startswith("53 s in all, 51 s of it in db-kill (27 s), failures (19 s), sockets")
    # db-kill's own settings: 4 kills, 1.5 s each, three policies one after another
    assert "22.5 s of writing to the lab's one db" in text


def test_a_missed_packets_row_says_where_its_time_goes() -> None:
    from lab.bench.packets import why

    text = why(Spread(1.6, 1.5, 1.7, 3), Spread(0.7, 0.7, 0.8, 3),
               {"start": 0.3, "read": 1.0, "lines": 0.2}, 100_000)  # fmt: skip
    assert "took 1.60 s to tshark's 0.70 s" in text
    assert "0.30 s starting Python" in text
    assert "about 12 µs of Python per frame for both), 0.10 s the rest" in text
