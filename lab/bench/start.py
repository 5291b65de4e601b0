"""Start-up: the wall time of the installed command, `socklab --help` and `socklab status`.

Each is run as a user types it (the console script beside this interpreter), beside two
peers: the interpreter alone (`python -c pass`, the floor that no lazy import goes
below) and `docker compose ps` of the same lab (status's peer: Compose reading the same
files and asking the same engine). One untimed run of each warms the page cache; then
``Sizes.starts`` rounds, the four commands in a rotating order. A target is met only
when the whole spread meets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from lab.api import Lab
from lab.bench.model import MET, Bench, BenchError, Sizes, Spread, verdict
from lab.progress import Progress, silent

TARGET = "`socklab --help` and `socklab status` start in under 0.15 s"
GOAL = 0.15
COMMAND_TIMEOUT = 60.0  # seconds: a start that takes this long is broken, not slow


def installed() -> str:
    """The `socklab` console script of this interpreter's environment (else on PATH)."""
    beside = Path(sys.executable).parent / "socklab"
    found = str(beside) if beside.exists() else shutil.which("socklab")
    if found is None:
        raise BenchError("no installed `socklab` command to time", "pip install -e . first")
    return found


def _timed(argv: list[str], env: Mapping[str, str], cwd: Path) -> float:
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=dict(env), capture_output=True, timeout=COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(argv)}` ran past {COMMAND_TIMEOUT:g} s") from None
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-300:]
        raise BenchError(f"`{' '.join(argv)}` failed ({done.returncode}): {tail}")
    return elapsed


def run(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    compose = net.backend.compose
    files = [arg for f in compose.file_paths() for arg in ("-f", str(f))]
    where = ["--project-dir", str(compose.workdir), *files, "-p", net.project]
    command = installed()
    peer = [str(compose.workdir), *files, "-p", net.project]
    commands = {
        "socklab --help": [command, "--help"],
        "socklab status": [command, *where, "status"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "docker compose ps": ["docker", "compose", "--project-directory", *peer, "ps"],
    }
    env = {**os.environ, **compose.env}
    names = list(commands)
    for name in names:  # warm-up, untimed
        _timed(commands[name], env, compose.workdir)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(sizes.starts):
        progress(f"round {round_ + 1} of {sizes.starts}")
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            seconds[name].append(_timed(commands[name], env, compose.workdir))
    return judged({name: Spread.of(values) for name, values in seconds.items()})


def judged(spreads: dict[str, Spread]) -> Bench:
    """The row from the measured spreads; each of ours met only by its whole spread. Pure."""
    verdicts = {
        name: verdict(spreads[name], GOAL, at_least=False)
        for name in ("socklab --help", "socklab status")
    }
    met = all(v == MET for v in verdicts.values())
    return Bench(
        "start",
        TARGET,
        met,
        "; ".join(f"{name} {s.text(3, ' s')}" for name, s in spreads.items()),
        {"seconds": {name: s.json() for name, s in spreads.items()}, "verdicts": verdicts},
        why="" if met else "; ".join(f"{k}: {v}" for k, v in verdicts.items() if v != MET),
    )
