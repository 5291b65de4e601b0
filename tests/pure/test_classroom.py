"""The class server's pure parts: the roster, tokens and their hashes, the rate limiter,
the SQLite records (on a file in tmp_path), the gate every request passes, sign-in.csv,
and the grades read from the records. Each guarantee is shown holding, and failing where
it must."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.classroom import grades, roster, tokens
from lab.classroom.auth import Gate, Who
from lab.classroom.roster import Student
from lab.classroom.serve import key_of, links_text, private_file
from lab.classroom.store import MIGRATIONS, Store
from lab.errors import UsageError
from lab.experiments.model import passed
from lab.grading import collect

RESULTS = Path(__file__).parent / "fixtures" / "results"
CLASS = [Student("ada", "Ada Lovelace"), Student("bob", "Bob Kahn"), Student("carol", "Carol")]
KEY = b"k" * 32
FAR = 4e9  # a session's expiry far in the future (Unix time, 2096)


# --- the roster ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "students"),
    [
        (
            "id,name\nada,Ada Lovelace\nbob,Bob Kahn\n",
            [Student("ada", "Ada Lovelace"), Student("bob", "Bob Kahn")],
        ),
        (  # the header is optional
            "ada,Ada Lovelace\nbob,Bob Kahn\n",
            [Student("ada", "Ada Lovelace"), Student("bob", "Bob Kahn")],
        ),
        ("ID , Name\r\nada,Ada\r\n", [Student("ada", "Ada")]),  # any case, spaces, CRLF
        (
            "\n# the class of 2026\nada,Ada\n\n  ,  \n#bob,Bob\ncarol,Carol\n",
            [Student("ada", "Ada"), Student("carol", "Carol")],
        ),
        (
            "ada\nbob,\nc_1-x,  \n",
            [Student("ada", "ada"), Student("bob", "bob"), Student("c_1-x", "c_1-x")],
        ),
        ('ada,"Lovelace, Ada"\n', [Student("ada", "Lovelace, Ada")]),  # a quoted comma
        ("0" + "a" * 39 + ",Long\n", [Student("0" + "a" * 39, "Long")]),  # 40: the longest
        # A header is one only on the first line: later, "id" is a student's id like any.
        ("ada,Ada\nid,name\n", [Student("ada", "Ada"), Student("id", "name")]),
    ],
)
def test_a_roster_gives_its_students_in_order(text: str, students: list[Student]) -> None:
    assert roster.parse(text) == students


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("ada,Ada\nAda,Upper\n", "the roster, line 2: id 'Ada' is not one a lab can be named"),
        ("ada.b,Dot\n", "the roster, line 1: id 'ada.b' is not one a lab can be named"),
        (",Nobody\n", "the roster, line 1: id '' is not one a lab can be named"),
        ("-ada,Dash\n", "the roster, line 1: id '-ada' is not one a lab can be named"),
        ("ada bob,Space\n", "the roster, line 1: id 'ada bob' is not one a lab can be named"),
        (
            "id,name\n" + "a" * 41 + ",Long\n",
            f"the roster, line 2: id '{'a' * 41}' is not one a lab can be named",
        ),
        ("ada,Ada\n\n# again:\nada,Ada L.\n", "the roster, line 4: id 'ada' is there twice"),
        ("ada,Ada\nbob,Bob,extra\n", "the roster, line 2: 3 fields"),
        ("ada,Ada,\n", "the roster, line 1: 3 fields"),  # a trailing comma is a field
        ("", "the roster names no student"),
        ("id,name\n# nobody yet\n\n", "the roster names no student"),
        # parse takes text without a BOM (load strips it): one left in is part of the id
        (
            "\ufeffid,name\nada,Ada\n",
            "the roster, line 1: id '\\ufeffid' is not one a lab can be named",
        ),
    ],
)
def test_a_roster_at_fault_is_refused_naming_the_line(text: str, what: str) -> None:
    with pytest.raises(UsageError) as caught:
        roster.parse(text)
    assert caught.value.what == what


def test_the_source_named_is_the_one_given() -> None:
    with pytest.raises(UsageError) as caught:
        roster.parse("ada\nBOB\n", "class.csv")
    assert caught.value.what == "class.csv, line 2: id 'BOB' is not one a lab can be named"


@pytest.mark.parametrize(
    ("count", "refused"), [(roster.MAX_STUDENTS, False), (roster.MAX_STUDENTS + 1, True)]
)
def test_a_roster_holds_at_most_max_students(count: int, refused: bool) -> None:
    text = "".join(f"s{i}\n" for i in range(count))
    if refused:
        with pytest.raises(UsageError) as caught:
            roster.parse(text)
        assert caught.value.what == f"the roster names {count} students; at most {count - 1}"
    else:
        assert len(roster.parse(text)) == count


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_load_reads_a_csv_with_or_without_a_bom(tmp_path: Path, bom: bytes) -> None:
    path = tmp_path / "class.csv"
    path.write_bytes(bom + b"id,name\nada,Ada Lovelace\n")
    assert roster.load(path) == [Student("ada", "Ada Lovelace")]


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (None, "cannot read the roster {path}: No such file or directory"),
        (b"ada,\xff\n", "the roster {path} is not UTF-8 text"),
    ],
)
def test_load_refuses_a_missing_or_undecodable_roster(
    tmp_path: Path, content: bytes | None, what: str
) -> None:
    path = tmp_path / "class.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        roster.load(path)
    assert caught.value.what == what.format(path=path)


@pytest.mark.parametrize("before", ["# the class of 2026\n", "\n"], ids=["comment", "blank"])
def test_a_header_after_skipped_lines_is_still_a_header(before: str) -> None:
    assert roster.parse(before + "id,name\nada,Ada\n") == [Student("ada", "Ada")]


# --- tokens -------------------------------------------------------------------------

ADA_TOKEN, ADA_HASH = tokens.issue("ada")
ADA_SECRET = tokens.split(ADA_TOKEN)[1]
BOB_SECRET = tokens.split(tokens.issue("bob")[0])[1]
SALT, DIGEST = ADA_HASH.split("$")[4:]


def part(hashed: str, index: int, value: str) -> str:
    """A hash with one of its $-separated parts replaced."""
    parts = hashed.split("$")
    parts[index] = value
    return "$".join(parts)


def other_first(text: str) -> str:
    """The text with its first character changed (the first: the last base64 character
    can carry padding bits only, and changing it may change no byte)."""
    return ("B" if text[0] == "A" else "A") + text[1:]


def test_issue_gives_id_dot_secret_and_a_hash_that_verifies_it() -> None:
    student, secret = tokens.split(ADA_TOKEN)
    assert (student, ADA_TOKEN) == ("ada", f"ada.{secret}")
    assert len(secret) == 32  # 24 random bytes, base64
    assert ADA_HASH.startswith(f"scrypt${tokens.N}${tokens.R}${tokens.P}$")
    assert secret not in ADA_HASH
    assert tokens.verify(secret, ADA_HASH)
    again_token, again_hash = tokens.issue("ada")
    assert (again_token != ADA_TOKEN, again_hash != ADA_HASH) == (True, True)
    assert not tokens.verify(secret, again_hash)


@pytest.mark.parametrize(
    ("secret", "stored", "accepted"),
    [
        pytest.param(ADA_SECRET, ADA_HASH, True, id="right"),
        pytest.param(ADA_SECRET, tokens.hash_secret(ADA_SECRET), True, id="another-salt"),
        pytest.param(other_first(ADA_SECRET), ADA_HASH, False, id="secret-changed"),
        pytest.param(ADA_SECRET + "x", ADA_HASH, False, id="secret-longer"),
        pytest.param(ADA_TOKEN, ADA_HASH, False, id="whole-token"),  # not the secret
        pytest.param("", ADA_HASH, False, id="no-secret"),
        pytest.param(BOB_SECRET, ADA_HASH, False, id="another-students-secret"),
        pytest.param(ADA_SECRET, part(ADA_HASH, 4, other_first(SALT)), False, id="salt-changed"),
        pytest.param(
            ADA_SECRET, part(ADA_HASH, 5, other_first(DIGEST)), False, id="digest-changed"
        ),
        pytest.param(ADA_SECRET, part(ADA_HASH, 5, DIGEST[:-1]), False, id="digest-shorter"),
        pytest.param(ADA_SECRET, part(ADA_HASH, 4, "é"), False, id="salt-not-base64"),
        pytest.param(ADA_SECRET, "", False, id="empty-hash"),
        pytest.param(ADA_SECRET, None, False, id="no-hash"),
        pytest.param(ADA_SECRET, part(ADA_HASH, 0, "pbkdf2"), False, id="not-scrypt"),
        pytest.param(ADA_SECRET, ADA_HASH.rsplit("$", 1)[0], False, id="five-parts"),
        pytest.param(ADA_SECRET, ADA_HASH + "$x", False, id="seven-parts"),
        pytest.param(ADA_SECRET, part(ADA_HASH, 1, "many"), False, id="n-not-a-number"),
        # 2**20: 1 GiB, more than scrypt may use; 1000: not a power of two
        pytest.param(ADA_SECRET, part(ADA_HASH, 1, str(2**20)), False, id="n-too-costly"),
        pytest.param(ADA_SECRET, part(ADA_HASH, 1, "1000"), False, id="n-not-power-of-two"),
    ],
)
def test_verify_accepts_only_the_secret_the_hash_was_made_of(
    secret: str, stored: str | None, accepted: bool
) -> None:
    assert tokens.verify(secret, stored) is accepted


@pytest.mark.parametrize(
    "digest",
    [
        pytest.param(DIGEST[:41], id="41-characters"),  # 1 more than a multiple of 4
        pytest.param("é" + DIGEST[1:], id="not-ascii"),
    ],
)
def test_verify_refuses_a_digest_that_is_not_base64(digest: str) -> None:
    assert tokens.verify(ADA_SECRET, part(ADA_HASH, 5, digest)) is False


@pytest.mark.parametrize(
    ("token", "parts"),
    [
        ("ada.s3cr3t", ("ada", "s3cr3t")),
        ("  ada.s3cr3t\n", ("ada", "s3cr3t")),  # as pasted
        ("a.b.c", ("a.b", "c")),  # the secret is after the last dot
        ("s3cr3t", ("", "")),
        (".s3cr3t", ("", "")),
        ("ada.", ("", "")),
        (".", ("", "")),
        ("", ("", "")),
    ],
)
def test_split_gives_id_and_secret_or_nothing(token: str, parts: tuple[str, str]) -> None:
    assert tokens.split(token) == parts


@pytest.mark.parametrize(
    ("key", "session", "same"),
    [
        (KEY, "session-1", True),
        (KEY, "session-2", False),
        (b"j" * 32, "session-1", False),
        (KEY, "session-1 ", False),
    ],
)
def test_csrf_is_per_key_and_per_session(key: bytes, session: str, same: bool) -> None:
    token = tokens.csrf_for(key, session)
    assert len(token) == 32
    assert int(token, 16) >= 0  # hexadecimal
    assert (token == tokens.csrf_for(KEY, "session-1")) is same


def test_the_limiter_allows_a_burst_then_says_how_long_to_wait() -> None:
    limiter = tokens.Limiter(per_minute=6, burst=3)  # one more every 10 s
    assert [limiter.allow("a", 100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 10.0]
    assert limiter.allow("b", 100.0) == 0.0  # another key has its own bucket
    assert limiter.allow("a", 105.0) == 5.0  # half refilled
    assert limiter.allow("a", 110.0) == 0.0  # a whole one back
    assert limiter.allow("a", 110.0) == 10.0
    # A long wait refills up to the burst, not beyond.
    assert [limiter.allow("a", 10_000.0) for _ in range(4)] == [0.0, 0.0, 0.0, 10.0]


# --- the store ----------------------------------------------------------------------


def raw(path: Path) -> sqlite3.Connection:
    """The database through a connection of its own, as another program sees it."""
    return sqlite3.connect(path)


def one(path: Path, sql: str, args: tuple[Any, ...] = ()) -> Any:
    db = raw(path)
    try:
        row = db.execute(sql, args).fetchone()
    finally:
        db.close()
    return row if row is None or len(row) > 1 else row[0]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "data" / "class.db")
    opened.sync_roster(CLASS)
    yield opened
    opened.close()


def test_a_new_database_is_at_the_latest_version_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "class.db"  # the folder is made too
    store = Store(path)
    try:
        assert store.version == len(MIGRATIONS) >= 1
        assert one(path, "PRAGMA user_version") == len(MIGRATIONS)
        assert one(path, "PRAGMA journal_mode") == "wal"
        tables = {"students", "sessions", "predictions", "runs"}
        names = one(path, "SELECT group_concat(name, ' ') FROM sqlite_master")
        assert set(names.split()) >= tables
    finally:
        store.close()
    # the query tells: a database made without the store is not in WAL mode
    plain = raw(tmp_path / "plain.db")
    plain.execute("CREATE TABLE t (x)")
    plain.close()
    assert one(tmp_path / "plain.db", "PRAGMA journal_mode") == "delete"


def test_opening_it_again_changes_nothing(store: Store) -> None:
    store.set_token("ada", tokens.hash_secret("s"))
    schema = one(store.path, "SELECT group_concat(sql, ';') FROM sqlite_master")
    store.close()
    again = Store(store.path)
    try:
        assert again.version == len(MIGRATIONS)
        assert one(store.path, "SELECT group_concat(sql, ';') FROM sqlite_master") == schema
        assert [s.id for s in again.students()] == ["ada", "bob", "carol"]
        assert tokens.verify("s", again.token_hash("ada"))
    finally:
        again.close()


@pytest.mark.parametrize(
    ("version", "refused"), [(len(MIGRATIONS) + 1, True), (len(MIGRATIONS) + 7, True), (0, False)]
)
def test_a_database_of_a_newer_lab_is_refused_not_written(
    tmp_path: Path, version: int, refused: bool
) -> None:
    path = tmp_path / "class.db"
    db = raw(path)
    db.execute(f"PRAGMA user_version = {version}")
    db.close()
    if refused:
        with pytest.raises(UsageError) as caught:
            Store(path)
        assert caught.value.what == (
            f"{path} was written by a newer version of the lab "
            f"(schema {version}, this one knows {len(MIGRATIONS)})"
        )
        assert one(path, "PRAGMA user_version") == version
        assert one(path, "SELECT count(*) FROM sqlite_master") == 0
    else:
        Store(path).close()
        assert one(path, "PRAGMA user_version") == len(MIGRATIONS)


def test_sync_roster_adds_renames_and_drops(store: Store) -> None:
    assert sorted(store.sync_roster(CLASS)) == ["ada", "bob", "carol"]  # none has a token
    store.set_token("ada", tokens.hash_secret("a"))
    store.set_token("bob", tokens.hash_secret("b"))
    assert store.sync_roster(CLASS) == ["carol"]
    store.open_session("h-ada", "ada", FAR)
    store.open_session("h-bob", "bob", FAR)

    # bob leaves the roster, ada is renamed, dave arrives
    missing = store.sync_roster(
        [Student("ada", "Ada L."), Student("carol", "C"), Student("dave", "D")]
    )

    assert sorted(missing) == ["carol", "dave"]
    assert [(s.id, s.name, s.active, s.has_token) for s in store.students()] == [
        ("ada", "Ada L.", True, True),
        ("bob", "Bob Kahn", False, True),
        ("carol", "C", True, False),
        ("dave", "D", True, False),
    ]
    assert (store.session("h-bob", 0), store.token_hash("bob")) == (None, None)
    assert one(store.path, "SELECT count(*) FROM sessions WHERE student = 'bob'") == 0
    assert store.session("h-ada", 0) == "ada"  # the others' sessions go on
    # back on the roster: active again, his old session still gone
    store.sync_roster(CLASS)
    bob = store.student("bob")
    assert bob is not None
    assert (bob.active, store.session("h-bob", 0)) == (True, None)


def test_set_token_on_an_unknown_student_is_refused(store: Store) -> None:
    with pytest.raises(UsageError) as caught:
        store.set_token("zed", tokens.hash_secret("z"))
    assert caught.value.what == "no student 'zed' in the class"
    store.set_token("ada", tokens.hash_secret("a"))
    ada = store.student("ada")
    assert ada is not None
    assert (ada.has_token, ada.token_issued_at is not None) == (True, True)
    store.set_token("ada", None)  # revoked
    ada = store.student("ada")
    assert ada is not None
    assert (ada.has_token, ada.token_issued_at) == (False, None)


@pytest.mark.parametrize(
    ("then", "at", "found"),
    [
        ("nothing", 999.0, "ada"),
        ("nothing", 1000.0, None),  # expires at 1000: not live at 1000
        ("nothing", 5000.0, None),
        ("unknown hash", 999.0, None),
        ("revoked", 999.0, None),
        ("reissued", 999.0, None),
        ("off the roster", 999.0, None),
        ("another student reissued", 999.0, "ada"),
        ("signed out", 999.0, None),
        ("opened without a token", 999.0, None),  # however it came to be, it is nobody's
    ],
)
def test_a_session_is_the_students_while_it_lives(
    store: Store, then: str, at: float, found: str | None
) -> None:
    store.set_token("ada", tokens.hash_secret("a"))
    store.set_token("bob", tokens.hash_secret("b"))
    store.open_session("h-ada", "ada", 1000.0)
    asked = "h-ada"
    if then == "unknown hash":
        asked = "h-nobody"
    elif then == "revoked":
        store.set_token("ada", None)
    elif then == "reissued":
        store.set_token("ada", tokens.hash_secret("a2"))
    elif then == "off the roster":
        store.sync_roster([s for s in CLASS if s.id != "ada"])
    elif then == "another student reissued":
        store.set_token("bob", tokens.hash_secret("b2"))
    elif then == "signed out":
        store.close_session("h-ada")
    elif then == "opened without a token":
        store.set_token("ada", None)
        store.open_session("h-late", "ada", 1000.0)
        asked = "h-late"
    assert store.session(asked, at) == found


ANSWERS = {"same-ip": True, "tcp-refused": False}


def test_a_prediction_is_committed_with_its_run_and_before_it(store: Store) -> None:
    run = store.queue_experiment("ada", "dispatch", ANSWERS)
    made_at, queued_at, student, experiment, answers = one(
        store.path,
        "SELECT p.made_at, r.queued_at, p.student, p.experiment, p.answers "
        "FROM runs r JOIN predictions p ON p.id = r.prediction WHERE r.id = ?",
        (run,),
    )
    assert made_at <= queued_at
    assert (student, experiment, json.loads(answers)) == ("ada", "dispatch", ANSWERS)
    found = store.run(run)
    assert found is not None
    assert (found.kind, found.what, found.state, found.answers, found.started_at) == (
        "experiment",
        "dispatch",
        "queued",
        ANSWERS,
        None,
    )
    # a check's run has no prediction: no answers, its upload instead
    check = store.queue_check("ada", "tcp-shout", "server.py", "print('hi')\n")
    found = store.run(check)
    assert found is not None
    assert (found.kind, found.answers, found.upload_name) == ("check", None, "server.py")
    assert store.upload(check) == "print('hi')\n"
    assert store.busy("ada")
    assert not store.busy("bob")


@pytest.mark.parametrize(
    ("skip", "taken"),
    [
        (set(), (1, "ada")),
        ({"ada"}, (2, "bob")),
        ({"bob", "carol"}, (1, "ada")),
        ({"ada", "bob"}, None),
    ],
)
def test_take_next_takes_the_oldest_queued_run_of_a_student_not_skipped(
    store: Store, skip: set[str], taken: tuple[int, str] | None
) -> None:
    for student in ("ada", "bob", "ada"):
        store.queue_experiment(student, "dispatch", ANSWERS)
    run = store.take_next(skip)
    if taken is None:
        assert run is None
        assert store.queue() == [(1, "ada"), (2, "bob"), (3, "ada")]
        return
    assert run is not None
    assert (run.id, run.student, run.state, run.answers) == (*taken, "running", ANSWERS)
    assert run.started_at is not None
    assert run.started_at >= run.queued_at
    assert store.run(run.id) == run
    assert taken not in store.queue()
    assert len(store.queue()) == 2


def test_queue_is_in_the_order_runs_are_taken(store: Store) -> None:
    for student in ("bob", "ada", "carol", "ada"):
        store.queue_experiment(student, "dispatch", ANSWERS)
    assert store.queue() == [(1, "bob"), (2, "ada"), (3, "carol"), (4, "ada")]
    store.take_next({"bob"})
    assert store.queue() == [(1, "bob"), (3, "carol"), (4, "ada")]
    assert store.take_next(set()) is not None
    assert store.queue() == [(3, "carol"), (4, "ada")]


@pytest.mark.parametrize(
    ("run", "student", "found"),
    [
        (1, None, True),
        (1, "ada", True),
        (1, "bob", False),
        (2, "bob", True),
        (2, "ada", False),
        (9, None, False),
    ],
)
def test_a_run_is_found_only_under_its_own_student(
    store: Store, run: int, student: str | None, found: bool
) -> None:
    store.queue_experiment("ada", "dispatch", ANSWERS)
    store.queue_check("bob", "tcp-shout", "s.py", "")
    for _ in range(2):
        taken = store.take_next(set())
        assert taken is not None
        store.finish(taken.id, {"of": taken.student}, True)
    got = store.run(run, student=student)
    assert (got is not None) is found
    assert (store.result(run, student=student) is not None) is found
    if got is not None:
        assert store.result(run, student=student) == {"of": got.student}


@pytest.mark.parametrize(
    ("before", "verdict", "after"),
    [
        ("running", True, ("done", True, {"verdict": True})),
        ("running", False, ("done", False, {"verdict": False})),
        ("interrupted", True, ("interrupted", None, None)),  # not overwritten
        ("failed", True, ("failed", None, None)),
        ("queued", True, ("queued", None, None)),  # never taken: nothing to finish
    ],
)
def test_finish_stores_a_running_runs_result_only(
    store: Store,
    before: str,
    verdict: bool,
    after: tuple[str, bool | None, dict[str, Any] | None],
) -> None:
    run = store.queue_experiment("ada", "dispatch", ANSWERS)
    if before != "queued":
        store.take_next(set())
    if before == "interrupted":
        store.interrupt_running()
    elif before == "failed":
        store.fail(run, "the lab did not start")

    store.finish(run, {"verdict": verdict}, verdict)

    found = store.run(run)
    assert found is not None
    assert (found.state, found.passed, store.result(run)) == after
    assert (found.ended_at is not None) is (before != "queued")
    assert [r for r, _, _ in store.results()] == ([run] if after[2] is not None else [])


def test_interrupt_running_marks_running_runs_only(store: Store) -> None:
    first = store.queue_experiment("ada", "dispatch", ANSWERS)
    second = store.queue_experiment("bob", "dispatch", ANSWERS)
    third = store.queue_check("carol", "tcp-shout", "s.py", "")
    store.take_next({"bob"})  # ada's
    store.take_next({"bob"})  # carol's

    interrupted = store.interrupt_running()

    assert [(r.id, r.student) for r in interrupted] == [(first, "ada"), (third, "carol")]
    states = {r.id: (r.state, r.error) for r in store.runs()}
    stopped = "the class server stopped during this run"
    assert states == {
        first: ("interrupted", stopped),
        second: ("queued", None),
        third: ("interrupted", stopped),
    }
    assert store.queue() == [(second, "bob")]
    assert store.interrupt_running() == []


def test_results_yields_every_stored_result_in_order(store: Store) -> None:
    for student in ("ada", "bob", "carol", "ada"):
        store.queue_experiment(student, "dispatch", ANSWERS)
    for _ in range(3):
        run = store.take_next(set())
        assert run is not None
        if run.student == "bob":
            store.fail(run.id, "boom")
        else:
            store.finish(run.id, {"run": run.id}, True)
    assert list(store.results()) == [(1, "ada", {"run": 1}), (3, "carol", {"run": 3})]
    assert [r.id for r in store.runs("ada")] == [4, 1]  # newest first, hers only
    assert [r.id for r in store.runs(limit=2)] == [4, 3]


def test_everything_stored_is_there_after_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "class.db"
    store = Store(path)
    store.sync_roster(CLASS)
    store.set_token("ada", tokens.hash_secret("a"))
    store.open_session("h-ada", "ada", FAR)
    done = store.queue_experiment("ada", "dispatch", ANSWERS)
    store.take_next(set())
    store.finish(done, {"passed": True}, True)
    cut = store.queue_experiment("bob", "dispatch", {"same-ip": False})
    store.take_next(set())
    waiting = store.queue_check("carol", "tcp-shout", "s.py", "x = 1\n")
    students, runs = store.students(), store.runs()
    store.close()

    # another program sees it all, from the file alone
    assert one(path, "SELECT count(*) FROM runs") == 3
    again = Store(path)
    try:
        assert again.students() == students
        assert again.runs() == runs
        assert [r.state for r in again.runs()] == ["queued", "running", "done"]
        assert again.session("h-ada", 0) == "ada"
        assert tokens.verify("a", again.token_hash("ada"))
        assert list(again.results()) == [(done, "ada", {"passed": True})]
        assert [r.id for r in again.interrupt_running()] == [cut]  # a restart's first step
        assert again.queue() == [(waiting, "carol")]
        assert again.upload(waiting) == "x = 1\n"
    finally:
        again.close()


# --- the gate -----------------------------------------------------------------------

BASE_HOSTS = {"127.0.0.1:8800", "localhost:8800", "[::1]:8800"}


@pytest.mark.parametrize(
    ("bind", "port", "public_url", "more_hosts", "more_origins"),
    [
        ("127.0.0.1", 8800, "", set(), set()),
        ("0.0.0.0", 8800, "", set(), set()),
        ("::", 8800, "", set(), set()),
        ("10.1.2.3", 8800, "", {"10.1.2.3:8800"}, {"http://10.1.2.3:8800"}),
        ("fe80::1", 8800, "", {"[fe80::1]:8800"}, {"http://[fe80::1]:8800"}),
        (
            "127.0.0.1",
            8800,
            "https://class.example.org/",
            {"class.example.org"},
            {"https://class.example.org"},
        ),
    ],
)
def test_for_address_names_this_server_and_no_other(
    store: Store,
    bind: str,
    port: int,
    public_url: str,
    more_hosts: set[str],
    more_origins: set[str],
) -> None:
    gate = Gate.for_address(store, bind, port, KEY, public_url)
    assert gate.hosts == BASE_HOSTS | more_hosts
    assert gate.origins == {f"http://{h}" for h in BASE_HOSTS} | more_origins


def test_for_address_follows_the_port(store: Store) -> None:
    gate = Gate.for_address(store, "127.0.0.1", 9123, KEY)
    assert gate.hosts == {"127.0.0.1:9123", "localhost:9123", "[::1]:9123"}
    assert "http://127.0.0.1:8800" not in gate.origins


@pytest.fixture
def gate(store: Store) -> Gate:
    return Gate.for_address(store, "127.0.0.1", 8800, KEY)


@pytest.mark.parametrize(
    ("origin", "required", "ok"),
    [
        ("http://127.0.0.1:8800", False, True),
        ("http://127.0.0.1:8800", True, True),
        ("http://localhost:8800", True, True),
        ("HTTP://LocalHost:8800", True, True),
        ("http://[::1]:8800", True, True),
        ("http://127.0.0.1:8801", False, False),
        ("https://127.0.0.1:8800", False, False),
        ("http://127.0.0.1", False, False),
        ("http://evil.example", False, False),
        ("http://evil.example:8800", False, False),
        ("null", False, False),
        ("", False, False),
        (None, False, True),  # curl, a script: the CSRF header decides
        (None, True, False),
    ],
)
def test_origin_ok_accepts_only_its_own(
    gate: Gate, origin: str | None, required: bool, ok: bool
) -> None:
    assert gate.origin_ok(origin, required=required) is ok


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8800", True),
        ("LOCALHOST:8800", True),
        ("127.0.0.1:8801", False),
        ("127.0.0.1", False),
        ("evil.example:8800", False),
        ("", False),
        (None, False),
    ],
)
def test_host_ok_accepts_only_its_own(gate: Gate, host: str | None, ok: bool) -> None:
    assert gate.host_ok(host) is ok


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        ("https://class.example.org", "class.example.org", True),
        ("http://127.0.0.1:8800", "127.0.0.1:8800", True),  # still its own
        ("http://class.example.org", "class.example.org:8800", False),
        ("https://other.example.org", "other.example.org", False),
    ],
)
def test_a_public_url_is_its_own_too(store: Store, origin: str, host: str, ok: bool) -> None:
    gate = Gate.for_address(store, "127.0.0.1", 8800, KEY, "https://class.example.org")
    assert (gate.origin_ok(origin, required=True), gate.host_ok(host)) == (ok, ok)


def test_a_public_url_in_capitals_accepts_what_a_browser_sends(store: Store) -> None:
    gate = Gate.for_address(store, "127.0.0.1", 8800, KEY, "https://Class.Example.org")
    assert gate.origin_ok("https://class.example.org", required=True)
    assert gate.host_ok("class.example.org")


@pytest.mark.parametrize(
    ("public_url", "host", "origin"),
    [
        ("http://class.example.org:80", "class.example.org", "http://class.example.org"),
        ("https://class.example.org:443/", "class.example.org", "https://class.example.org"),
        (
            "https://class.example.org:8443",
            "class.example.org:8443",
            "https://class.example.org:8443",
        ),
    ],
)
def test_a_public_url_spelling_out_its_default_port_matches_what_a_browser_sends(
    store: Store, public_url: str, host: str, origin: str
) -> None:
    """Browsers leave :80 (http) and :443 (https) out of Host and Origin."""
    gate = Gate.for_address(store, "127.0.0.1", 8800, KEY, public_url)
    assert gate.host_ok(host)
    assert gate.origin_ok(origin, required=True)


@pytest.fixture
def issued(store: Store) -> dict[str, str]:
    """Tokens for ada and bob, as sign-in.csv would hand them out."""
    handed = {}
    for student in ("ada", "bob"):
        token, hashed = tokens.issue(student)
        store.set_token(student, hashed)
        handed[student] = token
    return handed


def test_sign_in_with_a_valid_token_opens_a_session(gate: Gate, issued: dict[str, str]) -> None:
    who = gate.sign_in(f"  {issued['ada']}\n")
    assert who is not None
    assert (who.student, who.teacher) == ("ada", False)
    assert gate.student(who.session) == who
    assert gate.teacher(who.session) is None  # a student's cookie is not the teacher's
    other = gate.sign_in(issued["ada"])
    assert other is not None
    assert other.session != who.session
    assert gate.student(other.session) == other
    gate.sign_out(who)
    assert (gate.student(who.session), gate.student(other.session)) == (None, other)


def swapped(token: str, student: str) -> str:
    return f"{student}.{tokens.split(token)[1]}"


@pytest.mark.parametrize(
    "make",
    [
        "wrong secret",
        "bob's id, ada's secret",
        "ada's id, bob's secret",
        "an id not in the class",
        "the secret alone",
        "empty",
    ],
)
def test_sign_in_refuses_any_other_token(
    gate: Gate, store: Store, issued: dict[str, str], make: str
) -> None:
    token = {
        "wrong secret": swapped(tokens.issue("ada")[0], "ada"),
        "bob's id, ada's secret": swapped(issued["ada"], "bob"),
        "ada's id, bob's secret": swapped(issued["bob"], "ada"),
        "an id not in the class": swapped(issued["ada"], "zed"),
        "the secret alone": tokens.split(issued["ada"])[1],
        "empty": "",
    }[make]
    assert gate.sign_in(token) is None
    assert one(store.path, "SELECT count(*) FROM sessions") == 0


@pytest.mark.parametrize("then", ["reissued", "revoked", "off the roster"])
def test_a_reissued_token_ends_the_old_one_and_its_sessions(
    gate: Gate, store: Store, issued: dict[str, str], then: str
) -> None:
    ada = gate.sign_in(issued["ada"])
    bob = gate.sign_in(issued["bob"])
    assert ada is not None
    assert bob is not None
    new_token, new_hash = tokens.issue("ada")
    if then == "reissued":
        store.set_token("ada", new_hash)
    elif then == "revoked":
        store.set_token("ada", None)
    else:
        store.sync_roster([s for s in CLASS if s.id != "ada"])
    assert gate.student(ada.session) is None
    assert gate.sign_in(issued["ada"]) is None
    assert gate.student(bob.session) == bob  # nobody else's
    again = gate.sign_in(new_token)
    assert (again is not None) is (then == "reissued")


@pytest.mark.parametrize("cookie", [None, "", "not-a-session"])
def test_no_session_is_nobody(gate: Gate, issued: dict[str, str], cookie: str | None) -> None:
    assert gate.sign_in(issued["ada"]) is not None
    assert (gate.student(cookie), gate.teacher(cookie)) == (None, None)


def test_the_teacher_signs_in_only_with_the_latest_teacher_token(
    gate: Gate, issued: dict[str, str]
) -> None:
    assert gate.teacher_sign_in("") is None  # no teacher token made yet
    secret = gate.new_teacher_token()
    assert gate.teacher_sign_in(secret + "x") is None
    assert gate.teacher_sign_in(issued["ada"]) is None
    assert gate.teacher_sign_in(tokens.split(issued["ada"])[1]) is None
    assert gate.sign_in(f"ada.{secret}") is None  # and the teacher's is no student's
    who = gate.teacher_sign_in(f" {secret}\n")
    assert who is not None
    assert (who.student, who.teacher) == ("", True)
    assert gate.teacher(who.session) == who
    assert gate.student(who.session) is None

    newer = gate.new_teacher_token()

    assert newer != secret
    assert gate.teacher(who.session) is None
    assert gate.teacher_sign_in(secret) is None
    again = gate.teacher_sign_in(newer)
    assert again is not None
    assert gate.teacher(again.session) == again
    gate.sign_out(again)
    assert gate.teacher(again.session) is None


def test_csrf_ok_only_with_the_sessions_own_token(gate: Gate, store: Store) -> None:
    ada, ada_again, teacher = Who("ada", "s-1"), Who("ada", "s-2"), Who("", "s-3")
    assert gate.csrf_ok(ada, gate.csrf(ada))
    assert gate.csrf_ok(teacher, gate.csrf(teacher))
    assert not gate.csrf_ok(ada, None)
    assert not gate.csrf_ok(ada, "")
    assert not gate.csrf_ok(ada, gate.csrf(ada_again))
    assert not gate.csrf_ok(ada, gate.csrf(teacher))
    other_key = Gate.for_address(store, "127.0.0.1", 8800, b"j" * 32)
    assert not gate.csrf_ok(ada, other_key.csrf(ada))
    # the key, kept across restarts, makes the same token for the same session
    same_key = Gate.for_address(store, "127.0.0.1", 8800, KEY)
    assert gate.csrf_ok(ada, same_key.csrf(ada))


def test_attempts_at_once_are_throttled_per_address_and_right_ones_given_back(
    gate: Gate,
) -> None:
    # Attempts are charged before the scrypt: ten at once from one address, then a wait.
    assert [gate.throttled("10.0.0.1", 50.0) for _ in range(10)] == [0.0] * 10
    assert gate.throttled("10.0.0.1", 50.0) == 6.0  # 10 a minute: one in 6 s
    assert gate.throttled("10.0.0.2", 50.0) == 0.0
    assert gate.throttled("10.0.0.1", 56.0) == 0.0
    # A right token gives its attempt back: thirty students behind one NAT sign in.
    for _ in range(30):
        assert gate.throttled("10.0.0.9", 60.0) == 0.0
        gate.succeeded("10.0.0.9", 60.0)


def test_wrong_tokens_are_throttled_in_all(gate: Gate) -> None:
    for _ in range(60):
        gate.failed(50.0)  # wrong tokens from many addresses
    assert gate.throttled("10.0.2.1", 50.0) > 0  # a new address, but the server's 60 are spent
    assert gate.throttled("10.0.2.1", 51.0) == 0.0  # refilled: 300 a minute


# --- sign-in.csv and the server's private files -------------------------------------

OLD = (
    "id,name,link\n"
    "ada,Ada,http://old/signin?token=ada.OLD\n"
    "bob,Bob,http://old/signin?token=bob.OLD\n"
    "carol,Carol,http://old/signin?token=carol.OLD\n"
)
BASE = "http://127.0.0.1:8800"


@pytest.mark.parametrize(
    ("previous", "issued", "names", "expected"),
    [
        (  # ada's new link in place of her old one; bob's kept; carol, gone, dropped
            OLD,
            {"ada": "ada.NEW"},
            {"bob": "Bob", "ada": "Ada Lovelace"},
            "id,name,link\n"
            "bob,Bob,http://old/signin?token=bob.OLD\n"
            f"ada,Ada Lovelace,{BASE}/signin?token=ada.NEW\n",
        ),
        (  # nothing issued: the rows of the students still there, in the roster's order
            OLD,
            {},
            {"carol": "Carol", "ada": "Ada"},
            "id,name,link\n"
            "carol,Carol,http://old/signin?token=carol.OLD\n"
            "ada,Ada,http://old/signin?token=ada.OLD\n",
        ),
        (  # a first issue; a name with a comma quoted; an id not in names left out
            "",
            {"ada": "ada.A", "bob": "bob.B", "zed": "zed.Z"},
            {"ada": "Lovelace, Ada", "bob": "Bob"},
            "id,name,link\n"
            f'ada,"Lovelace, Ada",{BASE}/signin?token=ada.A\n'
            f"bob,Bob,{BASE}/signin?token=bob.B\n",
        ),
        (  # a new student among old ones
            OLD,
            {"dave": "dave.D"},
            {"ada": "Ada", "dave": "Dave", "bob": "Bob"},
            "id,name,link\n"
            "ada,Ada,http://old/signin?token=ada.OLD\n"
            f"dave,Dave,{BASE}/signin?token=dave.D\n"
            "bob,Bob,http://old/signin?token=bob.OLD\n",
        ),
    ],
)
def test_links_text_replaces_the_links_issued_and_keeps_the_rest(
    previous: str, issued: dict[str, str], names: dict[str, str], expected: str
) -> None:
    assert links_text(previous, issued, names, BASE) == expected


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("existing", "text"),
    [(None, "id,name,link\n"), (0o644, "id,name,link\n"), (0o666, b"\x00\x01"), (0o600, "x")],
)
def test_private_file_is_readable_by_its_owner_only(
    tmp_path: Path, existing: int | None, text: str | bytes
) -> None:
    path = tmp_path / "sign-in.csv"
    if existing is not None:
        path.write_text("an older, longer content\n")
        path.chmod(existing)
        assert mode(path) == existing  # as it was
    private_file(path, text)
    assert mode(path) == 0o600
    assert path.read_bytes() == (text.encode() if isinstance(text, str) else text)


def test_private_file_does_not_rely_on_the_umask(tmp_path: Path) -> None:
    # with no umask at all, the file is still the owner's only
    old = os.umask(0)
    try:
        private_file(tmp_path / "f", "x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "f") == 0o600


def test_the_key_is_made_once_and_kept(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    key = key_of(tmp_path / "a")
    assert len(key) == 32
    assert mode(tmp_path / "a" / "secret.key") == 0o600
    assert key_of(tmp_path / "a") == key  # open pages keep their CSRF tokens
    assert key_of(tmp_path / "b") != key


# --- grades from the store ----------------------------------------------------------


def recorded(name: str = "dispatch") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RESULTS / f"{name}.json").read_text())
    return data


def predicted(data: dict[str, Any], by: str) -> dict[str, Any]:
    """The result with predictions whose every number follows from its checks: right on
    every claim but the first (as tests/pure/test_grading_versions.py makes them)."""
    held = {c["id"]: c["held"] for c in data["checks"]}
    answers = {claim: h if i else not h for i, (claim, h) in enumerate(held.items())}
    by_claim = {claim: answers[claim] == held[claim] for claim in answers}
    data["predictions"] = {
        "by": by,
        "answers": answers,
        "right": sum(by_claim.values()),
        "total": len(by_claim),
        "by_claim": by_claim,
    }
    data["passed"] = passed(data["checks"])
    return data


def stored(store: Store, student: str, data: dict[str, Any]) -> int:
    """A run of the server's: the prediction queued, the run taken, its result finished."""
    answers = (data.get("predictions") or {}).get("answers", {})
    run = store.queue_experiment(student, str(data["experiment"]), answers)
    taken = store.take_next(set())
    assert taken is not None
    assert taken.id == run
    store.finish(run, data, bool(data["passed"]))
    return run


def first_column(text: str) -> list[str]:
    return [row[0] for row in csv.reader(io.StringIO(text))][1:]


@pytest.mark.parametrize(
    ("student", "by"),
    [("ada", "Zed Someone"), ("bob", "ada"), ("carol", "carol")],
)
def test_a_stored_result_is_the_students_whose_run_it_was(
    store: Store, student: str, by: str
) -> None:
    run = stored(store, student, predicted(recorded(), by))

    got = grades.collected(store)

    assert [(s.student, s.path) for s in got.submissions] == [(student, f"run {run} ({student})")]
    assert (got.skipped, got.unpredicted) == ([], [])
    assert first_column(grades.files(store)["students.csv"]) == [student]


@pytest.mark.parametrize(
    ("recompute_passed", "reason"),
    [
        (False, "edited: `passed` does not follow from its checks"),
        (True, "edited: its observations do not give its checks (different-processes)"),
    ],
)
def test_an_edited_result_in_the_store_is_skipped(
    store: Store, recompute_passed: bool, reason: str
) -> None:
    stored(store, "ada", predicted(recorded(), "Ada"))
    edited = predicted(recorded(), "Bob")
    edited["checks"][1]["held"] = not edited["checks"][1]["held"]
    if recompute_passed:
        edited["passed"] = passed(edited["checks"])
    run = stored(store, "bob", copy.deepcopy(edited))

    got = grades.collected(store)

    assert [s.student for s in got.submissions] == ["ada"]
    assert got.skipped == [collect.Skipped(f"run {run} (bob)", reason)]
    assert first_column(grades.files(store)["students.csv"]) == ["ada"]


def test_a_stored_result_without_predictions_is_graded_for_nobody(store: Store) -> None:
    run = stored(store, "ada", recorded())
    got = grades.collected(store)
    assert (got.submissions, got.skipped, got.unpredicted) == ([], [], [f"run {run} (ada)"])


@pytest.mark.parametrize("with_result", [True, False])
def test_files_are_the_four_lab_grade_writes(store: Store, with_result: bool) -> None:
    if with_result:
        stored(store, "ada", predicted(recorded(), "someone"))
    files = grades.files(store)
    assert list(files) == ["students.csv", "claims.csv", "checks.csv", "report.html"]
    assert first_column(files["students.csv"]) == (["ada"] if with_result else [])
    assert ("ada" in files["students.csv"]) is with_result
    assert grades.TITLE in files["report.html"]
    claims = first_column(files["claims.csv"])
    assert claims == (["dispatch"] * len(recorded()["checks"]) if with_result else [])


def test_stored_results_are_in_the_teachers_overview(store: Store) -> None:
    stored(store, "ada", predicted(recorded(), "someone"))
    store.queue_experiment("bob", "dispatch", {})
    rows = {r["id"]: r for r in grades.overview(store)["students"]}
    assert (rows["ada"]["right"], rows["ada"]["total"]) == (
        len(recorded()["checks"]) - 1,
        len(recorded()["checks"]),
    )
    assert rows["ada"]["wrong"] == [f"dispatch/{recorded()['checks'][0]['id']}"]
    assert (rows["bob"]["runs"], rows["bob"]["waiting"], rows["bob"]["total"]) == (1, 1, 0)
    assert (rows["carol"]["runs"], rows["carol"]["right"]) == (0, 0)
