"""The class's records: one SQLite file in WAL mode, written only by the class server.

Students, token hashes, sessions, predictions, runs and their results. A prediction
is committed before its run is queued, in one transaction, with the server's clock:
nobody can write one after seeing the result, or date a run earlier. Results are
stored as the server judged them. WAL with ``synchronous=FULL``: a transaction that
returned is on disk, so a server killed at any moment loses nothing it had stored.
One connection serves every thread, under a lock: a read waits for a write in
progress (milliseconds), never for a run.

The schema is versioned (``PRAGMA user_version``): ``MIGRATIONS[i]`` takes a
database from version i to i + 1, in a transaction, at open. A database from a
newer version of the lab is refused rather than written to.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.classroom.roster import Student
from lab.errors import UsageError

MIGRATIONS: tuple[str, ...] = (
    # 1: the first version
    """
    CREATE TABLE students (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,   -- 0: no longer on the roster
        token_hash TEXT,                     -- NULL: no token (revoked, or not issued yet)
        token_issued_at TEXT
    );
    CREATE TABLE sessions (
        hash TEXT PRIMARY KEY,               -- SHA-256 of the session id
        student TEXT NOT NULL REFERENCES students(id),
        created_at TEXT NOT NULL,
        expires_at REAL NOT NULL             -- Unix time
    );
    CREATE TABLE predictions (
        id INTEGER PRIMARY KEY,
        student TEXT NOT NULL REFERENCES students(id),
        experiment TEXT NOT NULL,
        answers TEXT NOT NULL,               -- JSON: claim id -> predicted to hold
        made_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        student TEXT NOT NULL REFERENCES students(id),
        kind TEXT NOT NULL CHECK (kind IN ('experiment', 'check')),
        what TEXT NOT NULL,                  -- the experiment, or the role checked
        prediction INTEGER UNIQUE REFERENCES predictions(id),
        upload_name TEXT,                    -- a check's file name, as uploaded
        upload TEXT,                         -- ... and its text
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'running', 'done', 'failed', 'interrupted')),
        queued_at TEXT NOT NULL,
        started_at TEXT,
        ended_at TEXT,
        progress TEXT NOT NULL DEFAULT '',
        result TEXT,                         -- JSON, as the server judged it
        passed INTEGER,
        error TEXT
    );
    CREATE INDEX runs_by_state ON runs (state, id);
    CREATE INDEX runs_by_student ON runs (student, id);
    """,
)

ACTIVE = ("queued", "running")


class TooManyWaiting(UsageError):
    """A student asked for more runs than may wait at once."""


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class StudentRecord:
    id: str
    name: str
    active: bool
    has_token: bool
    token_issued_at: str | None


@dataclass(frozen=True)
class Run:
    id: int
    student: str
    kind: str
    what: str
    state: str
    queued_at: str
    started_at: str | None
    ended_at: str | None
    progress: str
    passed: bool | None
    error: str | None
    answers: dict[str, bool] | None  # the prediction made before it, for an experiment
    upload_name: str | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "what": self.what,
            "state": self.state,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "progress": self.progress,
            "passed": self.passed,
            "error": self.error,
            "answers": self.answers,
            "upload_name": self.upload_name,
        }


_RUN = """
    SELECT r.id, r.student, r.kind, r.what, r.state, r.queued_at, r.started_at, r.ended_at,
           r.progress, r.passed, r.error, p.answers, r.upload_name
    FROM runs r LEFT JOIN predictions p ON p.id = r.prediction
"""


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row[0],
        student=row[1],
        kind=row[2],
        what=row[3],
        state=row[4],
        queued_at=row[5],
        started_at=row[6],
        ended_at=row[7],
        progress=row[8],
        passed=None if row[9] is None else bool(row[9]),
        error=row[10],
        answers=None if row[11] is None else json.loads(row[11]),
        upload_name=row[12],
    )


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=30
            )
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open the class's database {path}: {exc}") from None
        self._lock = threading.Lock()
        try:
            self.refuse_newer()  # before anything is written to it
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, tuple(args)))

    # --- schema ---

    @property
    def version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    def refuse_newer(self) -> None:
        version = self.version
        if version > len(MIGRATIONS):
            raise UsageError(
                f"{self.path} was written by a newer version of the lab "
                f"(schema {version}, this one knows {len(MIGRATIONS)})",
                "upgrade socklab, or give another --data folder",
            )

    def migrate(self) -> None:
        for target in range(self.version + 1, len(MIGRATIONS) + 1):
            with self._tx() as db:
                for statement in MIGRATIONS[target - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")

    # --- students and their tokens ---

    def sync_roster(self, students: list[Student]) -> list[str]:
        """Add the roster's students, rename, mark those gone inactive; the ids that have
        no token yet."""
        with self._tx() as db:
            db.execute("UPDATE students SET active = 0")
            for s in students:
                db.execute(
                    "INSERT INTO students (id, name) VALUES (?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, active = 1",
                    (s.id, s.name),
                )
            db.execute(
                "DELETE FROM sessions WHERE student IN (SELECT id FROM students WHERE active = 0)"
            )
            rows = db.execute("SELECT id FROM students WHERE active = 1 AND token_hash IS NULL")
            return [r[0] for r in rows]

    def students(self) -> list[StudentRecord]:
        rows = self._read(
            "SELECT id, name, active, token_hash IS NOT NULL, token_issued_at FROM students "
            "ORDER BY rowid"
        )
        return [StudentRecord(r[0], r[1], bool(r[2]), bool(r[3]), r[4]) for r in rows]

    def student(self, student: str) -> StudentRecord | None:
        return next((s for s in self.students() if s.id == student), None)

    def token_hash(self, student: str) -> str | None:
        rows = self._read("SELECT token_hash FROM students WHERE id = ? AND active = 1", (student,))
        return rows[0][0] if rows else None

    def set_token(self, student: str, hashed: str | None) -> None:
        """A new token's hash (None: revoked); the student's sessions end either way."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE students SET token_hash = ?, token_issued_at = ? WHERE id = ?",
                (hashed, now() if hashed else None, student),
            ).rowcount
            if not changed:
                raise UsageError(f"no student {student!r} in the class")
            db.execute("DELETE FROM sessions WHERE student = ?", (student,))

    # --- sessions ---

    def open_session(self, hashed: str, student: str, expires_at: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions (hash, student, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (hashed, student, now(), expires_at),
            )

    def session(self, hashed: str, at: float) -> str | None:
        """The student a live session is for; None if it is unknown, expired or theirs no
        longer (revoked, off the roster)."""
        rows = self._read(
            "SELECT s.student FROM sessions s JOIN students t ON t.id = s.student "
            "WHERE s.hash = ? AND s.expires_at > ? AND t.active = 1 "
            "AND t.token_hash IS NOT NULL",
            (hashed, at),
        )
        return rows[0][0] if rows else None

    def close_session(self, hashed: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE hash = ?", (hashed,))

    # --- runs ---

    @staticmethod
    def _room(db: sqlite3.Connection, student: str, most: int) -> None:
        waiting = db.execute(
            "SELECT COUNT(*) FROM runs WHERE student = ? AND state IN ('queued', 'running')",
            (student,),
        ).fetchone()[0]
        if waiting >= most:
            raise TooManyWaiting(f"you have {waiting} runs waiting: let one finish first")

    def queue_experiment(
        self, student: str, experiment: str, answers: dict[str, bool], most: int = 3
    ) -> int:
        """The prediction, then its run: committed together, the prediction first (unless
        the student has ``most`` runs waiting already: counted in the same transaction)."""
        with self._tx() as db:
            self._room(db, student, most)
            prediction = db.execute(
                "INSERT INTO predictions (student, experiment, answers, made_at) "
                "VALUES (?, ?, ?, ?)",
                (student, experiment, json.dumps(answers), now()),
            ).lastrowid
            return int(
                db.execute(
                    "INSERT INTO runs (student, kind, what, prediction, state, queued_at) "
                    "VALUES (?, 'experiment', ?, ?, 'queued', ?)",
                    (student, experiment, prediction, now()),
                ).lastrowid
                or 0
            )

    def queue_check(self, student: str, role: str, filename: str, text: str, most: int = 3) -> int:
        with self._tx() as db:
            self._room(db, student, most)
            return int(
                db.execute(
                    "INSERT INTO runs (student, kind, what, upload_name, upload, state, "
                    "queued_at) VALUES (?, 'check', ?, ?, ?, 'queued', ?)",
                    (student, role, filename, text, now()),
                ).lastrowid
                or 0
            )

    def busy(self, student: str) -> bool:
        return bool(
            self._read(
                "SELECT 1 FROM runs WHERE student = ? AND state IN ('queued', 'running')",
                (student,),
            )
        )

    def take_next(self, skip: set[str]) -> Run | None:
        """The oldest queued run of a student not in ``skip``, marked running."""
        with self._tx() as db:
            for row in db.execute(
                "SELECT id, student FROM runs WHERE state = 'queued' ORDER BY id"
            ).fetchall():
                if row[1] in skip:
                    continue
                db.execute(
                    "UPDATE runs SET state = 'running', started_at = ? WHERE id = ?",
                    (now(), row[0]),
                )
                found = db.execute(_RUN + " WHERE r.id = ?", (row[0],)).fetchone()
                return _run(found)
        return None

    def upload(self, run: int) -> str:
        rows = self._read("SELECT upload FROM runs WHERE id = ?", (run,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else ""

    def progress(self, run: int, line: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET progress = ? WHERE id = ?", (line[:500], run))

    def finish(self, run: int, result: dict[str, Any], passed: bool) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET state = 'done', ended_at = ?, result = ?, passed = ? "
                "WHERE id = ? AND state = 'running'",
                (now(), json.dumps(result, default=str), int(passed), run),
            )

    def fail(self, run: int, error: str, state: str = "failed") -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET state = ?, ended_at = ?, error = ? WHERE id = ? "
                "AND state IN ('queued', 'running')",
                (state, now(), error[:2000], run),
            )

    def interrupt_running(self) -> list[Run]:
        """At start: runs a stopped server left running are marked interrupted."""
        with self._tx() as db:
            rows = db.execute(_RUN + " WHERE r.state = 'running'").fetchall()
            db.execute(
                "UPDATE runs SET state = 'interrupted', ended_at = ?, "
                "error = 'the class server stopped during this run' WHERE state = 'running'",
                (now(),),
            )
        return [_run(r) for r in rows]

    def runs(self, student: str | None = None, limit: int = 200) -> list[Run]:
        where, args = ("WHERE r.student = ?", (student,)) if student else ("", ())
        rows = self._read(f"{_RUN} {where} ORDER BY r.id DESC LIMIT ?", (*args, limit))
        return [_run(r) for r in rows]

    def run(self, run: int, student: str | None = None) -> Run | None:
        """One run; with ``student``, only if it is theirs."""
        rows = self._read(_RUN + " WHERE r.id = ?", (run,))
        found = _run(rows[0]) if rows else None
        if found is None or (student is not None and found.student != student):
            return None
        return found

    def result(self, run: int, student: str | None = None) -> dict[str, Any] | None:
        found = self.run(run, student)
        if found is None:
            return None
        rows = self._read("SELECT result FROM runs WHERE id = ?", (run,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else None

    def queue(self) -> list[tuple[int, str]]:
        """Queued runs in the order they will be taken: (run id, student)."""
        return [
            (r[0], r[1])
            for r in self._read("SELECT id, student FROM runs WHERE state = 'queued' ORDER BY id")
        ]

    def results(self) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """Every stored result: (run id, student, the result as judged)."""
        rows = self._read(
            "SELECT id, student, result FROM runs WHERE result IS NOT NULL ORDER BY id"
        )
        for run, student, text in rows:
            yield run, student, json.loads(text)
