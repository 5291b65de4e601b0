"""A class at once: K simulated students run `dispatch` together on a class server.

`lab class serve` is started as a teacher would start it (its own process, its own
database, a roster of K students); each student signs in with their link and waits
for their lab. Then, ``repeats`` times, every student asks for `dispatch` in the
same moment, with a prediction, as the page does. Measured: the time from the
first request to the last result, the place in the queue each saw, the latency
of a page's request (``GET /api/runs`` of one student after another, back to back)
while the runs go on, and the server process's resident memory. The server is
stopped with Ctrl-C at the end, which removes every student's lab.
"""

from __future__ import annotations

import datetime
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lab.api import Lab
from lab.bench.model import Bench, BenchError, Sizes, Spread
from lab.progress import Progress, silent

TARGET = "30 students' dispatch runs all done, pages answering under 1 s at p99 meanwhile"
PREFIX = "bench-s"


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Server:
    """`lab class serve` in a process of its own, as a teacher starts it; its output kept.
    ``args``: more options; ``env``: its environment (default: this process's)."""

    def __init__(
        self,
        roster: Path,
        data: Path,
        progress: Progress = silent,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.data = data
        self.lines: list[str] = []
        argv = ["class", "serve", "--roster", str(roster), "--data", str(data), "--port", "0"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab", *argv, "--idle-stop", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=cwd,
            # Ctrl-C at its default: a parent shell may have started this with it ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        threading.Thread(target=self._read, args=(progress,), daemon=True).start()
        deadline = time.monotonic() + 900
        while not any("teacher's view:" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError("the class server did not start: " + " / ".join(self.lines[-5:]))
            time.sleep(0.2)
        said = {line.split(":", 1)[0]: line for line in self.lines}
        self.base = next(x for x in self.lines if "class server for" in x).split(" at ")[1]
        self.base = self.base.rstrip("/")
        self.teacher_link = said["teacher's view"].split(": ", 1)[1]

    def _read(self, progress: Progress) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            progress(line.rstrip(), detail=True)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=600)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def run(net: Lab, sizes: Sizes, progress: Progress = silent) -> Bench:
    import requests

    count = sizes.labs
    rounds = min(sizes.repeats, 3)
    with tempfile.TemporaryDirectory(prefix="socklab-bench-class-") as folder:
        roster = Path(folder) / "roster.csv"
        ids = [f"{PREFIX}{i:02d}" for i in range(1, count + 1)]
        roster.write_text("id,name\n" + "".join(f"{s},{s}\n" for s in ids))
        progress(f"starting a class server for {count} students")
        server = Server(roster, Path(folder) / "data", progress)
        try:
            links = {
                row.split(",")[0]: row.split(",")[2]
                for row in (Path(folder) / "data" / "sign-in.csv").read_text().splitlines()[1:]
            }
            sessions = {}
            for student in ids:
                s = requests.Session()
                signed = s.get(links[student], allow_redirects=False, timeout=60)
                if signed.status_code != 303:
                    raise BenchError(f"{student} could not sign in: {signed.text.strip()}")
                s.headers["X-CSRF-Token"] = s.get(f"{server.base}/api/me", timeout=60).json()[
                    "csrf"
                ]
                sessions[student] = s
            started = time.monotonic()
            progress(f"{count} students signed in: waiting for their labs")
            _wait_labs(server.base, sessions, 900)
            labs_up = time.monotonic() - started
            claims = _claims(server.base, sessions[ids[0]])
            finish: list[float] = []
            latencies: list[float] = []
            places: list[int] = []
            memory: list[float] = []
            for round_ in range(1, rounds + 1):
                progress(f"round {round_} of {rounds}: {count} students run dispatch at once")
                took, seen, waited, rss = _round(server, sessions, claims)
                finish.append(took)
                latencies += seen
                places += waited
                memory += rss
        finally:
            progress("stopping the class server (it removes every student's lab)")
            code = server.stop()
    if code != 0:
        raise BenchError(f"the class server exited with {code}: " + " / ".join(server.lines[-5:]))
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    spread = Spread.of(finish)
    met = count >= 30 and p99 < 1.0
    return Bench(
        "class",
        TARGET,
        met,
        f"{count} students, {rounds} rounds: all done in {spread.text(1, ' s')}; "
        f"pages p50 {1000 * p50:.0f} ms, p99 {1000 * p99:.0f} ms ({len(latencies)} requests); "
        f"server {max(memory):.0f} MiB at most; longest queue {max(places, default=0)}; "
        f"labs up in {labs_up:.0f} s",
        {
            "students": count,
            "rounds": rounds,
            "runs_at_once": os.cpu_count(),
            "finish_seconds": spread.json(),
            "latency_ms": {
                "p50": round(1000 * p50, 1),
                "p99": round(1000 * p99, 1),
                "max": round(1000 * max(latencies), 1),
                "requests": len(latencies),
            },
            "server_rss_mib": {
                "max": round(max(memory), 1),
                "mean": round(statistics.mean(memory), 1),
            },
            "longest_queue": max(places, default=0),
            "labs_up_seconds": round(labs_up, 1),
        },
        why="" if met else (f"only {count} students" if count < 30 else f"p99 {1000 * p99:.0f} ms"),
    )


def _wait_labs(base: str, sessions: dict[str, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = set(sessions)
    while waiting:
        if time.monotonic() > deadline:
            raise BenchError(f"labs not up after {timeout:.0f} s: {', '.join(sorted(waiting))}")
        for student in sorted(waiting):
            lab = sessions[student].get(f"{base}/api/lab", timeout=60).json()
            if lab.get("state") == "running":
                waiting.discard(student)
        time.sleep(1)


def _claims(base: str, session: Any) -> dict[str, bool]:
    found = session.get(f"{base}/api/experiments", timeout=60).json()
    return {c["id"]: True for c in next(e for e in found if e["name"] == "dispatch")["claims"]}


def _round(
    server: Server, sessions: dict[str, Any], claims: dict[str, bool]
) -> tuple[float, list[float], list[int], list[float]]:
    base = server.base
    started = time.monotonic()  # for the deadline; the time taken is the server's

    def ask(student: str) -> int:
        response = sessions[student].post(
            f"{base}/api/runs", json={"experiment": "dispatch", "answers": claims}, timeout=60
        )
        if response.status_code != 201:
            raise BenchError(f"{student}'s run was refused: {response.text}")
        return int(response.json()["run"])

    with ThreadPoolExecutor(len(sessions)) as pool:
        runs = dict(zip(sessions, pool.map(ask, sessions), strict=True))
    latencies: list[float] = []
    places: list[int] = []
    memory: list[float] = []
    left = dict(runs)
    stamps: list[tuple[str, str]] = []  # (queued_at, ended_at), the server's own clock
    students = list(sessions)
    i = 0
    deadline = started + 1800
    while left:
        if time.monotonic() > deadline:
            raise BenchError(f"runs not done after 30 minutes: {len(left)} left")
        student = students[i % len(students)]
        i += 1
        t = time.monotonic()
        listed = sessions[student].get(f"{base}/api/runs", timeout=60).json()
        latencies.append(time.monotonic() - t)
        memory.append(rss_mib(server.proc.pid))
        mine = next(r for r in listed if r["id"] == runs[student])
        if mine.get("place"):
            places.append(int(mine["place"]))
        if mine["state"] not in ("queued", "running"):
            if mine["state"] != "done" or not mine["passed"]:
                raise BenchError(f"{student}'s dispatch: {mine['state']} {mine.get('error')}")
            stamps.append((mine["queued_at"], mine["ended_at"]))
            left.pop(student, None)
    first = min(datetime.datetime.fromisoformat(q) for q, _ in stamps)
    last = max(datetime.datetime.fromisoformat(e) for _, e in stamps)
    return (last - first).total_seconds(), latencies, places, memory
