"""Cost with topology size: `lab up` beside `docker compose up -d --wait` of the same files,
and `lab status` beside `docker compose ps`, with N hosts added, each running one UDP process.

The hosts come from an override written here (``override``), over the lab's own files.
The lab runs as a project of its own (``<project>-scale``) on a /24 no Docker network
holds and on ports Docker picks, so the lab under test is never touched. For each N in
``Sizes.added_hosts``, ``Sizes.repeats`` repetitions (at most 3), interleaved (the lab
first, then Compose first, ...): each brings the project up from nothing running (the
images built) and times the whole command, as a user waits for it; after the lab's own
`up`, `lab status` and `docker compose ps` are timed too; `lab down` clears each run.
`lab up` is compared with Compose per repetition (the two back to back), and a target
is met only when its whole spread meets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import yaml

from lab.api import Lab
from lab.bench.model import MET, Bench, BenchError, Sizes, Spread, verdict
from lab.progress import Progress, silent

TARGET = (
    "`lab status` with 30 hosts added under 1 s; `lab up` within 1.2x of "
    "`docker compose up -d --wait` of the same files at every size"
)
STATUS_GOAL, UP_GOAL = 1.0, 1.2
FIRST_ADDRESS = 120  # the added hosts' last octets: clear of the lab's own (.10, .20, .100)
PORT = 9000
SHOUT = ("udp-shout", str(PORT))  # its healthcheck: an answer to a datagram
COMMAND_TIMEOUT = 600.0  # seconds for one command; 30 hosts come up in well under a minute
IMAGE = {
    "image": "${LAB_SERVICES_IMAGE:-socklab-services:latest}",
    "pull_policy": "never",
    "restart": "no",
    "stop_grace_period": "3s",
    "user": "10001:10001",
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "pids_limit": 64,
    "mem_limit": "128m",
}
CHECK = {"interval": "1s", "timeout": "3s", "retries": 30}


def override(count: int) -> dict[str, Any]:
    """``count`` hosts, each with one UDP process (udp-shout on PORT), as a user writes
    them in an override (compose.yaml's anchors do not reach another file). Pure."""
    services: dict[str, Any] = {}
    for i in range(count):
        host, process = f"scale-h{i}", f"scale-p{i}"
        services[host] = {
            **IMAGE,
            "init": True,
            "command": ["sleep", "infinity"],
            "hostname": host,
            "healthcheck": {"test": ["CMD", "true"], **CHECK},
            "networks": {
                "labnet": {"ipv4_address": f"${{LAB_NET_PREFIX:-10.203.0}}.{FIRST_ADDRESS + i}"}
            },
            "depends_on": {"apphost": {"condition": "service_started"}},
        }
        services[process] = {
            **IMAGE,
            "command": ["python3", "-m", "services.servers.udp_shout"],
            "network_mode": f"service:{host}",
            "pid": f"service:{host}",
            "labels": {"socklab.ports": f"{PORT}/udp shout"},
            "environment": {"LAB_SERVICE": process, "SHOUT_PORT": str(PORT)},
            "healthcheck": {
                "test": ["CMD", "python3", "-m", "services.runtime.healthcheck", *SHOUT],
                **CHECK,
            },
            "depends_on": {host: {"condition": "service_started"}},
        }
    return {"services": services}


def free_prefix(taken: list[IPv4Network]) -> str:
    """The first 10.239.K.0/24 that no Docker network overlaps, as LAB_NET_PREFIX. Pure."""
    for k in range(256):
        candidate = IPv4Network(f"10.239.{k}.0/24")
        if not any(candidate.overlaps(net) for net in taken):
            return f"10.239.{k}"
    raise BenchError("no free /24 in 10.239.0.0/16 for the benchmark's project")


def _timed(argv: list[str], env: Mapping[str, str], cwd: Path) -> float:
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(argv[-3:])}` ran past {COMMAND_TIMEOUT:g} s") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-300:]
        raise BenchError(f"`{' '.join(argv[-3:])}` failed ({done.returncode}): {tail}")
    return time.monotonic() - started


def run(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    from lab.engine import named

    base = net.backend.compose
    project = f"{net.project}-scale"
    env = {
        **os.environ,
        **base.env,
        "LAB_NET_PREFIX": free_prefix(named.taken_subnets(net.backend.client)),
        "LAB_NAME": "",
        # Every published port left to Docker: the lab under test holds the default ones.
        **dict.fromkeys(("LAB_HTTP_PORT", "LAB_DB_PORT", "LAB_TCP_SHOUT_PORT"), ""),
        "LAB_UDP_SHOUT_PORT": "",
    }
    repeats = max(1, min(sizes.repeats, 3))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="socklab-bench-scale-") as folder:
        for count in sizes.added_hosts:
            extra = Path(folder) / f"added-{count}.yaml"
            extra.write_text(yaml.safe_dump(override(count), sort_keys=False))
            files = [arg for f in (*base.file_paths(), extra) for arg in ("-f", str(f))]
            lab_argv = [sys.executable, "-m", "lab", "--project-dir", str(base.workdir)]
            lab_argv += [*files, "-p", project]
            compose = ["docker", "compose", "--project-directory", str(base.workdir)]
            compose += [*files, "-p", project]
            times: dict[str, list[float]] = {k: [] for k in ("lab", "compose", "status", "ps")}
            try:
                _timed([*lab_argv, "down"], env, base.workdir)  # a killed run's leftovers
                for rep in range(repeats):
                    order = ("lab", "compose") if rep % 2 == 0 else ("compose", "lab")
                    for side in order:
                        progress(f"{count} hosts added: {side} up ({rep + 1} of {repeats})")
                        if side == "lab":
                            times["lab"].append(_timed([*lab_argv, "up"], env, base.workdir))
                            times["status"].append(_timed([*lab_argv, "status"], env, base.workdir))
                            times["ps"].append(_timed([*compose, "ps"], env, base.workdir))
                        else:
                            argv = [*compose, "up", "-d", "--wait"]
                            times["compose"].append(_timed(argv, env, base.workdir))
                        _timed([*lab_argv, "down"], env, base.workdir)
            finally:
                subprocess.run(
                    [*lab_argv, "down"], cwd=base.workdir, env=env, capture_output=True,
                    timeout=COMMAND_TIMEOUT, check=False,
                )  # fmt: skip
            ratios = [a / b for a, b in zip(times["lab"], times["compose"], strict=True)]
            rows.append(
                {
                    "added": count,
                    "lab_up": Spread.of(times["lab"]).json(),
                    "compose_up": Spread.of(times["compose"]).json(),
                    "ratio": Spread.of(ratios).json(),
                    "status": Spread.of(times["status"]).json(),
                    "compose_ps": Spread.of(times["ps"]).json(),
                }
            )
    return judged(rows, repeats)


def judged(rows: list[dict[str, Any]], repeats: int) -> Bench:
    """The bench's row from the measured sizes: each target met only by its whole
    spread; the status target is judged at the largest size measured. Pure."""
    largest = max(rows, key=lambda r: r["added"])
    verdicts = {
        f"lab up / compose, {r['added']} added": verdict(
            Spread(**r["ratio"]), UP_GOAL, at_least=False
        )
        for r in rows
    }
    verdicts[f"lab status, {largest['added']} added"] = verdict(
        Spread(**largest["status"]), STATUS_GOAL, at_least=False
    )
    # The status target names 30 hosts: fewer (--tiny) measure the machinery, not it.
    met = all(v == MET for v in verdicts.values()) if largest["added"] >= 30 else None

    def s(d: dict[str, Any]) -> str:
        return Spread(**d).text(2, " s")

    summary = "; ".join(
        f"{r['added']} added: lab up {s(r['lab_up'])}, compose {s(r['compose_up'])}, "
        f"ratio {r['ratio']['median']:.2f}x ({r['ratio']['low']:.2f}-{r['ratio']['high']:.2f}); "
        f"lab status {s(r['status'])}, compose ps {s(r['compose_ps'])}"
        for r in rows
    )
    short = [f"{k}: {v}" for k, v in verdicts.items() if v != MET]
    return Bench(
        "scale",
        TARGET,
        met,
        summary,
        {"sizes": rows, "repeats": repeats, "verdicts": verdicts},
        why="; ".join(short) if met is False else "",
    )
