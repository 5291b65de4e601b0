"""Every benchmark runs, on a tiny setting (benchmarks are commands, not timed tests)."""

from __future__ import annotations

import json
from pathlib import Path

from lab.backends.engine import Engine
from lab.bench import report
from tests.docker.conftest import PROJECT, run_lab_cli, settled


def test_each_benchmark_runs_on_a_tiny_setting(lab: Engine, tmp_path: Path) -> None:
    # No --markdown: a page is refused from a tree with changes, which a developer's is.
    names = ["redis", "c10k", "udp", "packets", "up", "check", "scale", "start"]
    proc = run_lab_cli(
        "-p", PROJECT, "bench", *names, "--tiny", "--out", str(tmp_path), timeout=1200
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
    assert c10k["cgroup_bytes_per_connection"]["usage"] not in (0, None)
    udp = results["udp"]["data"]
    curve = udp["curves"][0]["points"]
    for peer in ("udp-shout", "socat"):
        assert all(p["sent"] > 0 and p["received"] > 0 for p in curve[peer]), peer
    assert len(udp["receive_buffer"]) == 1  # one buffer size, granted to both peers
    assert results["packets"]["data"]["frames"] == 2000
    assert results["up"]["data"]["seconds"]["n"] == 2
    assert results["check"]["data"]["seconds"]["tcp_shout.py"]["n"] == 2
    scale = results["scale"]["data"]
    assert [r["added"] for r in scale["sizes"]] == [0, 2]
    assert all(r["ratio"]["n"] == 2 and r["status"]["n"] == 2 for r in scale["sizes"])
    assert results["scale"]["met"] is None  # two hosts cannot meet or miss a target of 30
    start = results["start"]["data"]["seconds"]
    assert sorted(start) == sorted(
        ["socklab --help", "socklab status", "python -c pass", "docker compose ps"]
    )
    assert all(s["n"] == 3 for s in start.values())
    assert (tmp_path / "udp-loss.png").read_bytes()[:4] == b"\x89PNG"
    page = report.render(run)
    assert "## Cost with topology size" in page
    assert all(f"| {name} |" in page for name in names)
    assert not lab.client.containers.list(
        all=True, filters={"label": "com.docker.compose.project=" + PROJECT + "-scale"}
    )
    # What the benchmarks started is gone, and the lab is as it was.
    left = lab.client.containers.list(all=True, filters={"label": "socklab.purpose=bench"})
    assert [c.name for c in left if (c.name or "").startswith(PROJECT)] == []
    settled(lab)
