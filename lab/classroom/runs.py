"""Running what students ask for, as many at once as the machine holds, the rest queued.

Runs wait in the database (state ``queued``), so a queue survives the server. A
fixed number of workers take the oldest run of a student who has nothing running
(a student's lab runs one thing at a time), do it in a thread on the student's lab
(started or mended first), and store its result as the server judged it: the same
checks as `lab grade` makes of a file (lab.grading.collect.read), so a stored
result is one the report can use. Progress lines go to the database and to the
student's open pages.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.classroom.labs import Labs
from lab.classroom.store import Run, Store
from lab.errors import LabError
from lab.grading import collect

Notify = Callable[[str, dict[str, Any]], None]  # (student, message) from any thread


class Runs:
    def __init__(self, store: Store, labs: Labs, capacity: int, notify: Notify) -> None:
        self.store = store
        self.labs = labs
        self.capacity = max(1, capacity)
        self.notify = notify
        self.running: set[str] = set()  # students with a run in a worker now
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.worker()) for _ in range(self.capacity)]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def queued(self) -> None:
        self.wake.set()
        self.tell_queue()

    def tell_queue(self) -> None:
        """Every waiting student their place in the queue."""
        for place, (run, student) in enumerate(self.store.queue(), start=1):
            self.notify(student, {"kind": "queue", "run": run, "place": place})

    async def worker(self) -> None:
        while True:
            run = self.store.take_next(self.running)
            if run is None:
                self.wake.clear()
                await self.wake.wait()
                continue
            self.running.add(run.student)
            self.tell_queue()
            try:
                await asyncio.to_thread(self.execute, run)
            finally:
                self.running.discard(run.student)
                self.wake.set()  # that student's next run may go now
            self.notify(run.student, {"kind": "run", "run": run.id})

    def execute(self, run: Run) -> None:
        def progress(message: str, *, detail: bool = False) -> None:
            if detail:
                return
            self.store.progress(run.id, message)
            self.notify(run.student, {"kind": "progress", "run": run.id, "text": message})

        progress(f"started: {run.what}")
        try:
            with self.labs.run(run.student, progress) as lab:
                lab.end_terminals()  # nothing the student left running steers the run
                data = (
                    self._experiment(run, lab)
                    if run.kind == "experiment"
                    else self._check(run, lab, progress)
                )
            _, reason = collect.read(f"run {run.id}", data)
            if reason is not None:
                self.store.fail(run.id, f"the server could not judge its result: {reason}")
                return
            self.store.finish(run.id, data, bool(data["passed"]))
        except LabError as exc:
            self.store.fail(run.id, exc.line())
        except Exception as exc:  # one student's run must not end the server
            self.store.fail(run.id, f"{type(exc).__name__}: {exc}")

    def _experiment(self, run: Run, lab: Any) -> dict[str, Any]:
        from lab.experiments import EXPERIMENTS
        from lab.experiments.model import run_experiment

        result = run_experiment(EXPERIMENTS[run.what], lab, run.answers or {}, run.student)
        return result.to_json()

    def _check(self, run: Run, lab: Any, progress: Any) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="socklab-check-") as folder:
            path = Path(folder) / (run.upload_name or "server.py")
            path.write_text(self.store.upload(run.id), encoding="utf-8")
            result = lab.check(path, run.what, progress=progress, by=run.student)
        data: dict[str, Any] = result.to_json()
        return data
