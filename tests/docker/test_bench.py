"""Every benchmark runs, on a tiny setting (benchmarks are commands, not timed tests)."""

from __future__ import annotations

import json
from pathlib import Path

from lab.backends.engine import Engine
from lab.bench import report
from tests.docker.conftest import PROJECT, run_lab_cli, settled


def test_each_benchmark_runs_on_a_tiny_setting(lab: Engine, tmp_path: Path) -> None:
    page = tmp_path / "BENCHMARKS.md"
    names = ["redis", "c10k", "udp", "packets", "up", "check"]
    proc = run_lab_cli(
        "-p", PROJECT, "bench", *names, "--tiny", "--out", str(tmp_path), "--markdown", str(page),
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = json.loads((tmp_path / "latest.json").read_text())
    results = {b["name"]: b for b in run["benchmarks"]}
    assert list(results) == names
    redis = results["redis"]["data"]["configs"]
    assert [c["policy"] for c in redis] == ["off", "always"]
    for config in redis:
        for side in ("db", "redis"):
            assert config[side]["SET P1"]["n"] == 2  # every repetition measured, none dropped
            assert config[side]["GET P16"]["median"] > 0
    c10k = results["c10k"]["data"]
    assert c10k["held"] == c10k["asked"] == 50
    assert c10k["round_trips"] == 25
    assert c10k["cgroup_bytes_per_connection"]["usage"] != 0
    curve = results["udp"]["data"]["curves"][0]["points"]
    for peer in ("udp-shout", "socat"):
        assert all(p["sent"] > 0 and p["received"] > 0 for p in curve[peer]), peer
    assert results["packets"]["data"]["frames"] == 2000
    assert results["up"]["data"]["seconds"]["n"] == 2
    assert results["check"]["data"]["seconds"]["tcp_shout.py"]["n"] == 2
    assert (tmp_path / "udp-loss.png").read_bytes()[:4] == b"\x89PNG"
    assert page.read_text() == report.render(run)
    # What the benchmarks started is gone, and the lab is as it was.
    left = lab.client.containers.list(all=True, filters={"label": "socklab.purpose=bench"})
    assert [c.name for c in left if (c.name or "").startswith(PROJECT)] == []
    settled(lab)
