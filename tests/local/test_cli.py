"""The `lab` command where no Docker is involved: help text and the no-Docker error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_lab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_help_lists_every_command() -> None:
    result = run_lab("--help")
    assert result.returncode == 0
    for command in ("up", "down", "status", "send"):
        assert f"lab {command}" in result.stdout


def test_no_docker_is_one_clear_line() -> None:
    result = run_lab("status", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Docker Engine is not reachable at unix:///nonexistent/docker.sock" in lines[0]


def test_bad_usage_is_exit_2() -> None:
    result = run_lab("send", "carrier-pigeon", "hi")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
