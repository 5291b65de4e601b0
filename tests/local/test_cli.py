"""The `lab` command where no Docker is involved: help text and the no-Docker error."""

from __future__ import annotations

import argparse
import os
import signal
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


def test_help_lists_every_command_and_every_command_has_help() -> None:
    from lab.cli import build_parser

    commands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    result = run_lab("--help")
    assert result.returncode == 0
    summary = result.stdout.split("  COMMAND\n", 1)[1].split("\n\n", 1)[0]  # a line each
    listed = [line.split()[0] for line in summary.splitlines() if line[4:5].isalpha()]
    assert sorted(listed) == sorted(commands)
    for command in commands:
        assert f"\n  lab {command}" in result.stdout, f"no example of lab {command}"
        sub = run_lab(command, "--help")
        assert sub.returncode == 0, command
        assert sub.stdout.startswith(f"usage: lab {command}")
    assert "6 a claim did not hold" in result.stdout  # the exit codes, from lab.errors


def test_no_docker_is_one_clear_line() -> None:
    result = run_lab("status", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Docker Engine is not reachable at unix:///nonexistent/docker.sock" in lines[0]


def test_bad_usage_is_exit_2_before_docker_is_asked() -> None:
    no_docker = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = run_lab("send", "carrier-pigeon", "hi", env=no_docker)
    assert result.returncode == 2, result.stderr
    assert "no process, host or address 'carrier-pigeon'" in result.stderr
    assert run_lab("chaos", "explode", "db").returncode == 2


def a_capture(path: Path) -> Path:
    """A two-frame pcap, written the way the lab's capture helper writes one."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from lab.services.helpers.capture import file_header, record

    hello = bytes(Ether() / IP(src="10.203.0.100", dst="10.203.0.20") / UDP(dport=8080) / b"hi")
    answer = bytes(Ether() / IP(src="10.203.0.20", dst="10.203.0.100") / UDP(sport=8080) / b"HI")
    path.write_bytes(
        file_header()
        + record(100, 0, hello, len(hello))
        + record(100, 500_000, answer, len(answer))
    )
    return path


def test_packets_needs_no_docker(tmp_path: Path) -> None:
    pcap = a_capture(tmp_path / "two.pcap")
    no_docker = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    overview = run_lab("packets", str(pcap), env=no_docker)
    assert overview.returncode == 0, overview.stderr
    assert "UDP 2 B" in overview.stdout
    assert "UDP checksums: 2 valid" in overview.stdout
    detail = run_lab("packets", str(pcap), "--frame", "2", env=no_docker)
    assert detail.returncode == 0
    assert "b'HI'" in detail.stdout
    assert "port 8080 → 53" in detail.stdout


def test_packets_errors_are_one_line(tmp_path: Path) -> None:
    pcap = a_capture(tmp_path / "two.pcap")
    (tmp_path / "notes.txt").write_text("not a capture\n")
    cases = [
        (("packets", str(tmp_path / "missing.pcap")), 1, "cannot read"),
        (("packets", str(tmp_path / "notes.txt")), 1, "cannot read"),
        (("packets", str(pcap), "--frame", "9"), 2, "has 2 frames; no frame 9"),
        (("packets", str(pcap), "--ladder"), 2, "needs the experiment result"),
        (("run", "dispatch", "--offload"), 2, "give --capture too"),
    ]
    for args, code, words in cases:
        result = run_lab(*args, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
        assert result.returncode == code, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert words in result.stderr


def test_a_child_sent_ctrl_c_gets_it_even_when_the_test_run_ignores_it() -> None:
    from tests.conftest import sigint_as_default

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `make test &` leaves it
    try:
        ask = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
        inherited = subprocess.run(
            [sys.executable, "-c", ask], capture_output=True, text=True, check=True, timeout=30
        )
        restored = subprocess.run(
            [sys.executable, "-c", ask],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            preexec_fn=sigint_as_default,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert inherited.stdout.strip() == "True"  # what the three Ctrl-C tests once got
    assert restored.stdout.strip() == "False"  # Ctrl-C raises KeyboardInterrupt again
