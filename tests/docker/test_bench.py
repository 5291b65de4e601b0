"""Every benchmark runs, on a tiny setting (benchmarks are commands, not timed tests)."""

from __future__ import annotations

import json
from pathlib import Path

from lab.engine.stack import Stack
from tests.docker.conftest import PROJECT, run_lab_cli


def test_each_benchmark_runs_on_a_tiny_setting(lab: Stack, tmp_path: Path) -> None:
    proc = run_lab_cli(
        "-p",
        PROJECT,
        "bench",
        "redis",
        "c10k",
        "udp",
        "--tiny",
        "--out",
        str(tmp_path),
        "--markdown",
        str(tmp_path / "BENCHMARKS.md"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {b["name"]: b for b in json.loads((tmp_path / "latest.json").read_text())}
    assert set(results) == {"redis", "c10k", "udp"}
    redis = results["redis"]["data"]["requests_per_second"]
    assert redis["db P1"]["SET"] > 0
    assert redis["redis P1"]["GET"] > 0
    c10k = results["c10k"]["data"]
    assert c10k["held"] == c10k["asked"] == 50
    assert c10k["round_trips"] == 25
    assert all(p["sent"] > 0 for p in results["udp"]["data"]["points"])
    assert (tmp_path / "udp-loss.png").read_bytes()[:4] == b"\x89PNG"
    assert "| c10k |" in (tmp_path / "BENCHMARKS.md").read_text()
    # The benchmark's redis-server is gone, and the lab is as it was.
    names = [c.name for c in lab.client.containers.list(all=True)]
    assert f"{PROJECT}-bench-redis" not in names
    assert all(s.ready for s in lab.states().values())
