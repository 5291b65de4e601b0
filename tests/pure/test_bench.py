"""Benchmark plumbing that needs no lab: parsing redis-benchmark, percentiles, the table."""

from __future__ import annotations

import pytest

from lab.bench import Bench, markdown, parse_redis_benchmark
from services.probes.loadgen import percentile
from services.probes.writer import ranges

CSV = """"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","98039.22","0.287","0.080","0.263","0.431","0.623","1.151"
"GET","104166.67","0.265","0.072","0.247","0.399","0.551","0.871"
"""


def test_redis_benchmark_csv() -> None:
    assert parse_redis_benchmark(CSV) == {"SET": 98039.22, "GET": 104166.67}
    assert parse_redis_benchmark("") == {}


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


def test_markdown_table_says_what_was_missed() -> None:
    text = markdown(
        [
            Bench("redis", "0.5x", False, "db/Redis: SET P1 0.31x"),
            Bench("udp", "none", None, "loss passes 1% at 40000 datagrams/s"),
        ],
        "Linux 6.x, 2 CPUs",
        "lab bench",
    )
    assert "| redis | 0.5x | **no** | db/Redis: SET P1 0.31x |" in text
    assert "| udp | none | - |" in text
    assert "`lab bench` on Linux 6.x, 2 CPUs" in text


def test_markdown_explains_a_missed_target_and_draws_the_udp_table() -> None:
    points = [
        {"rate": 1000, "sent": 1000, "received": 1000, "loss": 0.0, "kernel_drops": 0},
        {"rate": 9000, "sent": 9000, "received": 8100, "loss": 0.1, "kernel_drops": 900},
    ]
    text = markdown(
        [
            Bench("cycle", "3 s", False, "lab up 4.9 s"),
            Bench("udp", "none", None, "loss at 9000", {"points": points}),
        ],
        "m",
        "lab bench",
    )
    assert "## Why targets are missed" in text
    assert "- **cycle**: Measured from `lab up` to the last healthcheck passing" in text
    assert "| 9000 | 9000 | 8100 | 10.0% | 900 |" in text
