"""Benchmark plumbing that needs no lab: parsing, spreads, onsets, and the page from the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.bench import BENCHES, BenchError, Spread, report, stamp
from lab.bench import c10k as c10k_bench
from lab.bench import redis as redis_bench
from lab.bench import scale as scale_bench
from lab.bench import start as start_bench
from lab.bench import udp as udp_bench
from lab.bench.model import verdict
from lab.errors import DirtyTree
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
        ([0.0, 0.02, 0.5], (1000, 2000)),  # between the last rate under 1% and the first past
        ([0.011, 0.0, 0.0], (0, 1000)),  # even a first point can be past it
        ([0.0, 0.01, 0.02], (2000, 3000)),  # exactly 1% is not past 1%
    ],
)
def test_udp_loss_onset_on_the_grid(losses: list[float], expected: tuple[int, int] | None) -> None:
    points = [{"rate": 1000 * (i + 1), "loss": loss} for i, loss in enumerate(losses)]
    assert udp_bench.grid_bracket(list(reversed(points))) == expected


def test_udp_onset_is_narrowed_by_bisection_not_left_on_the_grid() -> None:
    asked: list[int] = []

    def loss(rate: int) -> float:  # a server that starts losing past 61,000/s
        asked.append(rate)
        return 0.05 if rate > 61_000 else 0.0

    below, above = udp_bench.bisect(loss, 40_000, 80_000, 5)
    assert asked == [60_000, 70_000, 65_000, 62_500, 61_250]
    assert below == 60_000
    assert above == 61_250
    assert udp_bench.bisect(loss, 61_000, 61_100, 5) == (61_000, 61_100)  # within 1%: done


@pytest.mark.parametrize(
    ("brackets", "agree"),
    [
        ([[60_000, 61_250], [61_000, 62_500]], True),
        ([[60_000, 61_250], [70_000, 72_500]], False),
        ([None, None], True),
        ([[60_000, 61_250], None], False),  # one curve reached 1%, the other never did
    ],
)
def test_udp_curves_agree_only_when_their_brackets_overlap(
    brackets: list[list[int] | None], agree: bool
) -> None:
    assert udp_bench.overlap(brackets) is agree


SS = """State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
UNCONN 0      0            0.0.0.0:8091       0.0.0.0:*
\t skmem:(r0,rb2097152,t0,tb212992,f0,w0,o0,bl0,d0)
UNCONN 0      0            0.0.0.0:8092       0.0.0.0:*
\t skmem:(r0,rb425984,t0,tb212992,f0,w0,o0,bl0,d0)
"""


def test_the_receive_buffer_the_kernel_granted_each_udp_socket() -> None:
    assert udp_bench.receive_buffer(SS, 8091) == 2097152
    assert udp_bench.receive_buffer(SS, 8092) == 425984
    assert udp_bench.receive_buffer(SS, 8080) is None


def test_socat_asks_for_udp_shouts_receive_buffer() -> None:
    source = (ROOT / "services/servers/udp_shout.py").read_text()
    assert "SO_RCVBUF, 1 << 20" in source  # udp-shout's own request
    listen = next(a for a in udp_bench.socat_argv() if a.startswith("UDP4-LISTEN:"))
    assert listen.endswith(f",rcvbuf={1 << 20}")


@pytest.mark.parametrize(
    ("spread", "goal", "at_least", "expected"),
    [
        (Spread(0.60, 0.55, 0.70, 5), 0.5, True, "met"),
        (Spread(0.77, 0.45, 0.92, 5), 0.5, True, "median met, spread crosses"),
        (Spread(0.40, 0.35, 0.55, 5), 0.5, True, "missed"),
        (Spread(1.10, 1.00, 1.19, 3), 1.2, False, "met"),
        (Spread(1.15, 1.05, 1.30, 3), 1.2, False, "median met, spread crosses"),
        (Spread(0.14, 0.12, 0.16, 10), 0.15, False, "median met, spread crosses"),
    ],
)
def test_a_target_is_met_only_by_the_whole_spread(
    spread: Spread, goal: float, at_least: bool, expected: str
) -> None:
    assert verdict(spread, goal, at_least=at_least) == expected


def test_a_redis_ratio_and_its_spread_come_from_the_same_per_repetition_ratios() -> None:
    # Medians of each side give 100/100 = 1.00x; the repetitions' own ratios say 0.50x.
    ratio = redis_bench.ratio([50.0, 100.0, 200.0], [100.0, 100.0, 400.0])
    assert ratio == Spread(0.5, 0.5, 1.0, 3)


def test_a_tcp_charge_that_read_zero_before_and_after_is_not_accounted() -> None:
    per = c10k_bench.per_connection(
        {"usage": 1_000_000, "tcp": 0}, {"usage": 81_000_000, "tcp": 0}, 10_000
    )
    assert per == {"usage": 8000.0, "tcp": None}
    text = c10k_bench.charge_text(per, 6_500.0)
    assert "TCP buffers apart not accounted (0 before and after)" in text
    assert "0.0 KB" not in text
    # Memory unread is not memory met: with TCP buffers not accounted, no verdict.
    assert c10k_bench.verdict(True, per) is None
    assert c10k_bench.verdict(True, {"usage": 8000.0, "tcp": 100.0}) is True
    assert c10k_bench.verdict(True, {"usage": 10_300.0, "tcp": 0.0}) is False
    assert c10k_bench.verdict(False, {"usage": 10.0, "tcp": 0.0}) is False
    # A charge that moved is measured, even when it ends where it began at zero.
    assert c10k_bench.per_connection({"tcp": 4096}, {"tcp": 0}, 1) == {"tcp": -4096.0}


def test_a_missing_cgroup_reading_is_an_error_never_a_zero() -> None:
    from lab.bench import density

    assert density.read(0, "CPU", "abc") == 0  # a real zero stays a zero
    with pytest.raises(BenchError, match="no CPU reading for container 0123456789ab"):
        density.read(None, "CPU", "0123456789abcdef")


def test_density_is_met_only_with_the_shims_cpu_counted() -> None:
    from lab.bench import density

    last = {"memory_mib_max": 90.0, "cpu_pct_per_lab": 1.17, "cpu_with_shims_pct_per_lab": 3.12}
    assert density.judged(last, 30) is False  # 1.17% in the cgroups alone would have passed
    assert density.judged({**last, "cpu_with_shims_pct_per_lab": 1.9}, 30) is True
    assert "shims" in density.TARGET


def test_stamps_leave_out_the_benchmarks_own_outputs() -> None:
    porcelain = (
        " M lab/bench/udp.py\n M benchmarks/results/latest.json\n"
        "?? benchmarks/results/udp-loss.png\n M BENCHMARKS.md\n"
        "R  old.py -> lab/new.py\n"
    )
    outputs = ["benchmarks/results", "BENCHMARKS.md"]
    assert stamp.changed(porcelain, outputs) == ["lab/bench/udp.py", "lab/new.py"]
    assert stamp.changed(" M benchmarks/results/latest.json\n", outputs) == []


def test_a_page_is_refused_from_a_dirty_tree_or_an_unknown_commit() -> None:
    stamp.check_page(stamp.Stamp("abc1234", ()))  # clean: no error
    with pytest.raises(DirtyTree) as dirty:
        stamp.check_page(stamp.Stamp("abc1234", ("lab/bench/udp.py",)))
    assert dirty.value.line().startswith(
        "refusing --markdown: the tree has uncommitted changes (lab/bench/udp.py)"
    )
    with pytest.raises(DirtyTree, match="no commit to name"):
        stamp.check_page(stamp.Stamp("unknown", None))


def test_a_tree_that_changed_during_the_run_stamps_it_dirty() -> None:
    clean = stamp.Stamp("abc1234", ())
    assert stamp.across(clean, clean) == clean
    edited = stamp.across(clean, stamp.Stamp("abc1234", ("lab/bench/udp.py",)))
    assert edited.dirty is True
    moved = stamp.across(clean, stamp.Stamp("def5678", ()))
    assert moved.changed == ("HEAD moved to def5678 during the run",)


@pytest.mark.parametrize(
    ("measured", "shown"),
    [
        ({"commit": "abc1234", "dirty": False}, "abc1234"),
        ({"commit": "abc1234", "dirty": True}, "abc1234 (uncommitted changes)"),
        ({"commit": "abc1234"}, "abc1234 (tree state not recorded)"),  # a row from before
        ({"commit": "unknown", "dirty": None}, "unknown (tree state unknown)"),
    ],
)
def test_the_run_column_says_when_a_commit_did_not_hold_the_code(
    measured: dict[str, Any], shown: str
) -> None:
    assert stamp.text(measured) == shown


def test_the_scale_override_adds_hosts_each_with_one_udp_process() -> None:
    services = scale_bench.override(2)["services"]
    assert list(services) == ["scale-h0", "scale-p0", "scale-h1", "scale-p1"]
    assert services["scale-h1"]["networks"]["labnet"]["ipv4_address"].endswith("}.121")
    assert services["scale-p1"]["network_mode"] == "service:scale-h1"
    assert services["scale-p1"]["labels"] == {"socklab.ports": "9000/udp shout"}
    assert scale_bench.override(0) == {"services": {}}


def test_the_scale_project_takes_a_subnet_no_network_holds() -> None:
    from ipaddress import IPv4Network

    taken = [IPv4Network("10.239.0.0/24"), IPv4Network("10.239.1.0/25")]
    assert scale_bench.free_prefix(taken) == "10.239.2"
    with pytest.raises(BenchError):
        scale_bench.free_prefix([IPv4Network("10.0.0.0/8")])


def _size(added: int, ratio: Spread, status: Spread) -> dict[str, Any]:
    up = Spread(2.0, 1.9, 2.1, 3).json()
    return {"added": added, "lab_up": up, "compose_up": up, "ratio": ratio.json(),
            "status": status.json(), "compose_ps": up}  # fmt: skip


def test_scale_is_met_only_when_every_spread_meets_it_at_30_hosts() -> None:
    fine, fast = Spread(1.1, 1.0, 1.15, 3), Spread(0.5, 0.4, 0.6, 3)
    assert scale_bench.judged([_size(0, fine, fast), _size(30, fine, fast)], 3).met is True
    crossing = scale_bench.judged(
        [_size(0, Spread(1.1, 1.0, 1.3, 3), fast), _size(30, fine, fast)], 3
    )
    assert crossing.met is False
    assert crossing.why == "lab up / compose, 0 added: median met, spread crosses"
    slow = scale_bench.judged([_size(30, fine, Spread(5.1, 4.9, 5.3, 3))], 3)
    assert slow.met is False
    assert slow.why == "lab status, 30 added: missed"
    tiny = scale_bench.judged([_size(0, fine, fast), _size(2, fine, fast)], 2)
    assert tiny.met is None  # the target names 30 hosts: two cannot meet or miss it


def test_start_is_met_only_when_each_spread_stays_under_the_goal() -> None:
    quick, peer = Spread(0.10, 0.09, 0.12, 10), Spread(0.5, 0.4, 0.6, 10)
    spreads = {"socklab --help": quick, "socklab status": quick, "docker compose ps": peer}
    assert start_bench.judged(spreads).met is True
    spreads["socklab status"] = Spread(0.14, 0.12, 0.2, 10)
    row = start_bench.judged(spreads)
    assert row.met is False
    assert row.why == "socklab status: median met, spread crosses"


MEASURED = {
    "command": "lab bench", "machine": "Linux 6.x, 2 CPUs", "date": "2026-11-27", "dirty": False
}  # fmt: skip


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


def test_every_path_benchmarks_readme_names_exists() -> None:
    import re

    text = (ROOT / "benchmarks/README.md").read_text()
    named = set(re.findall(r"`((?:lab|services|tests|benchmarks)/[\w./-]+)`", text))
    named |= set(re.findall(r"\b(tests/[\w/]+\.py)\b", text))
    assert "lab/bench/report.py" in named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == [], f"benchmarks/README.md names what does not exist: {missing}"
    for name in re.findall(r"socklab bench (\w+)", text):
        assert name in BENCHES, f"benchmarks/README.md names no benchmark {name}"
