"""Each student's named lab, started on arrival, mended on use, stopped when idle.

A student's lab is the named lab of their id (docs/classroom.md), on the server's
engine (``machines``, engines of several machines chosen by the student's place in the
roster, is the start of `--cluster`, which `class serve` does not offer yet).
Everything here is called from worker threads; one lock per student keeps two
actions from starting or mending the same lab at once, and a semaphore bounds how
many labs start together (each start is a Compose run and a burst of container
creations).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab import api
from lab.engine.docker_client import Client
from lab.errors import LabError
from lab.progress import Progress, silent

STARTS_AT_ONCE = 3


@dataclass
class Labs:
    students: Sequence[str]
    files: tuple[Path, ...] = ()
    project_dir: Path | None = None
    machines: Sequence[Client] = ()  # --cluster: one engine per machine
    starts: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(STARTS_AT_ONCE))
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _last: dict[str, float] = field(default_factory=dict)
    _built: threading.Event = field(default_factory=threading.Event)
    _build_lock: threading.Lock = field(default_factory=threading.Lock)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    needs_mending: set[str] = field(default_factory=set)  # a run was cut short there
    running: set[str] = field(default_factory=set)  # a run has their lab altered on purpose
    _opened: dict[str, api.Lab] = field(default_factory=dict)  # Compose resolved once each

    def _lock(self, student: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(student, threading.Lock())

    def open(self, student: str) -> api.Lab:
        if student in self._opened:
            return self._opened[student]
        client = None
        if self.machines:
            client = self.machines[list(self.students).index(student) % len(self.machines)]
        lab = api.open(self.project_dir, files=self.files, name=student, client=client)
        if lab.is_running():
            self._opened[student] = lab
        return lab

    def touch(self, student: str) -> None:
        self._last[student] = time.monotonic()

    def ensure(self, student: str, progress: Progress = silent) -> api.Lab:
        """The student's lab, up and whole: started if absent, mended if a part of it died."""
        with self._lock(student):
            return self._ensure(student, progress)

    def _ensure(self, student: str, progress: Progress) -> api.Lab:
        """``ensure``, its student's lock held."""
        self.touch(student)
        lab = self.open(student)
        states = lab.states()
        if not states:
            self._opened.pop(student, None)
            lab = self.open(student)  # gone altogether: its record went with it
            self._start(lab, progress)
            self._opened[student] = lab
            return lab
        if student in self.running:
            return lab  # a check stops a process on purpose: mending would break it
        expected = set(lab.topology.hosts) | set(lab.topology.processes)
        dead = sorted(n for n in expected if n not in states or states[n].status != "running")
        if student in self.needs_mending:
            progress("mending your lab after a run the server's stop cut short")
            lab.restore(progress)
            self.needs_mending.discard(student)
        elif dead:
            progress(f"your lab lost {', '.join(dead)}: mending it")
            lab.restore(progress)
            lab.wait_healthy(timeout=120, progress=progress)
        return lab

    def _start(self, lab: api.Lab, progress: Progress) -> None:
        with self.starts:
            if not self._built.is_set():
                with self._build_lock:  # the first start builds the image, once
                    if not self._built.is_set():
                        progress("building the lab's image (once for the class)")
                        lab.up(progress=progress, build=True)
                        self._built.set()
                        return
            progress("starting your lab")
            lab.up(progress=progress, build=False)

    @contextlib.contextmanager
    def run(self, student: str, progress: Progress = silent) -> Iterator[api.Lab]:
        """The student's lab, whole, for a run that may alter it: nothing mends it meanwhile."""
        with self._lock(student):  # marked running before anyone else may stop or mend it
            lab = self._ensure(student, progress)
            self.running.add(student)
        try:
            yield lab
        finally:
            with self._guard:
                self.running.discard(student)
            self.touch(student)

    def prepare(self, progress: Progress = silent) -> None:
        """The image every student's lab runs, built once before anyone arrives."""
        with self._build_lock:
            self.open(self.students[0]).prepare(progress)
            self._built.set()

    def stop(self, student: str) -> bool:
        """Remove the student's lab (it starts again on their next action)."""
        with self._lock(student):
            lab = self.open(student)
            if not lab.is_running():
                return False
            lab.down()
            self._opened.pop(student, None)
            self._last.pop(student, None)
            return True

    def stop_if_idle(self, student: str, after: float, in_use: Callable[[str], bool]) -> bool:
        """Remove the lab if, under its lock, it has still seen no action for ``after``
        seconds, runs nothing and ``in_use`` says nobody holds it (a terminal, a queue)."""
        with self._lock(student):
            last = self._last.get(student)
            if last is None or last > time.monotonic() - after:
                return False
            if student in self.running or in_use(student):
                return False
            lab = self.open(student)
            if not lab.is_running():
                return False
            lab.down()
            self._opened.pop(student, None)
            self._last.pop(student, None)
            return True

    def idle(self, after: float, busy: set[str]) -> list[str]:
        """Students whose lab has seen no action for ``after`` seconds and runs nothing."""
        limit = time.monotonic() - after
        return [s for s, at in list(self._last.items()) if at < limit and s not in busy]

    def stop_all(self, progress: Progress = silent) -> list[str]:
        stopped = []
        for student in self.students:
            try:
                if self.stop(student):
                    stopped.append(student)
                    progress(f"removed {student}'s lab")
            except LabError as exc:
                progress(f"{student}'s lab: {exc.line()}")
        return stopped

    def state(self, student: str) -> str:
        """absent, or the words of its hosts and processes (running, exited...)."""
        states = self.open(student).states()
        if not states:
            return "absent"
        words = {s.word for s in states.values()}
        return "running" if words <= {"running", "starting"} else ", ".join(sorted(words))
