"""`socklab class serve`: the roster in, sign-in links out, the server up until Ctrl-C.

Its data folder holds the database (class.db), the key its CSRF tokens are made
with (so open pages survive a restart), and sign-in.csv: each student's link, as
issued (only a token's hash is kept in the database, so a lost link is reissued,
never recovered). On start, runs a killed server left running are marked
interrupted and the labs they ran on are mended on their next use. On Ctrl-C or
SIGTERM: no new work, every terminal closed, running runs marked interrupted, and
every student's lab removed (unless ``keep_labs``).
"""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import os
import secrets
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from aiohttp import web

from lab.classroom import roster, tokens
from lab.classroom.auth import Gate
from lab.classroom.labs import Labs
from lab.classroom.server import ClassServer
from lab.classroom.store import Store
from lab.errors import UsageError
from lab.web.guard import literal

LINKS = "sign-in.csv"
DATABASE = "class.db"
KEY = "secret.key"
ADDRESS = "address"  # where the server was last served: the links `class tokens` writes
LOCK = "serve.lock"


def hold(folder: Path) -> IO[bytes]:
    """The data folder, for this server alone: two would mark each other's runs
    interrupted and drive the same labs."""
    handle = (folder / LOCK).open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(
            f"another class server is serving {folder}", "stop it first, or give another --data"
        ) from None
    return handle


def served_address(folder: Path) -> str:
    """The address the class was last served at ("" if never)."""
    path = folder / ADDRESS
    return path.read_text(encoding="utf-8").strip() if path.exists() else ""


@dataclass(frozen=True)
class Settings:
    roster: Path
    data: Path
    bind: str = "127.0.0.1"
    port: int = 8800
    capacity: int = 0  # runs at once; 0: the machine's CPU count
    idle_minutes: float = 60.0
    files: tuple[Path, ...] = ()
    public_url: str = ""
    keep_labs: bool = False


def private_file(path: Path, text: str | bytes) -> None:
    """Written readable by its owner only, from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    os.chmod(path, 0o600)


def key_of(folder: Path) -> bytes:
    path = folder / KEY
    if not path.exists():
        private_file(path, secrets.token_bytes(32))
    return path.read_bytes()


def links_text(previous: str, issued: dict[str, str], names: dict[str, str], base: str) -> str:
    """sign-in.csv with the links just issued in place of the students' older ones (pure)."""
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(previous)) if r.get("id")}
    for student, token in issued.items():
        link = f"{base}/signin?token={token}"
        rows[student] = {"id": student, "name": names.get(student, ""), "link": link}
    out = io.StringIO()
    writer = csv.DictWriter(out, ["id", "name", "link"], lineterminator="\n")
    writer.writeheader()
    for student in names:
        if student in rows:
            writer.writerow(rows[student])
    return out.getvalue()


def issue(store: Store, students: Sequence[str], data: Path, base: str) -> Path:
    """New tokens for ``students``, their links written to sign-in.csv (only hashes kept)."""
    issued = {}
    for student in students:
        token, hashed = tokens.issue(student)
        store.set_token(student, hashed)
        issued[student] = token
    path = data / LINKS
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    names = {s.id: s.name for s in store.students() if s.active}
    private_file(path, links_text(previous, issued, names, base))
    return path


def listen(bind: str, port: int) -> socket.socket:
    from lab.cli.commands.web import free_port  # the same clear error for a taken port

    free_port(bind, port)
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    return socket.create_server((bind, port), family=family, reuse_port=False)


def serve(settings: Settings, say: Callable[[str], None]) -> None:
    students = roster.load(settings.roster)
    settings.data.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.data.chmod(0o700)  # token hashes, results, the CSRF key: the teacher's only
    lock = hold(settings.data)  # released when this process ends, however it ends
    store = Store(settings.data / DATABASE)
    missing = store.sync_roster(students)
    sock = listen(settings.bind, settings.port)
    port = int(sock.getsockname()[1])
    shown = "127.0.0.1" if settings.bind in ("127.0.0.1", "0.0.0.0", "::") else settings.bind
    base = settings.public_url.rstrip("/") or f"http://{literal(shown)}:{port}"
    (settings.data / ADDRESS).write_text(base + "\n", encoding="utf-8")  # for `class tokens`
    if missing:
        path = issue(store, missing, settings.data, base)
        say(f"{len(missing)} new sign-in links in {path} (readable by you only)")
    gate = Gate.for_address(store, settings.bind, port, key_of(settings.data), settings.public_url)
    teacher = gate.new_teacher_token()
    interrupted = store.interrupt_running()
    labs = Labs([s.id for s in students], settings.files)

    def progress(message: str, *, detail: bool = False) -> None:
        if not detail:
            say(message)

    say("preparing the lab's image (the first time: a few minutes)")
    labs.prepare(progress)
    for run in interrupted:
        labs.needs_mending.add(run.student)
    if interrupted:
        say(f"{len(interrupted)} runs were interrupted by the last stop: marked so")
    server = ClassServer(
        store,
        gate,
        labs,
        settings.capacity or os.cpu_count() or 2,
        settings.idle_minutes * 60,
        secure_cookies=settings.public_url.startswith("https://"),
    )
    try:
        asyncio.run(_run(server, sock, say, base, teacher, len(students)))
    finally:
        store.interrupt_running()
        if not settings.keep_labs:
            say("removing the students' labs (--keep-labs leaves them)")

            labs.stop_all(progress)
        store.close()
        lock.close()


async def _run(
    server: ClassServer,
    sock: socket.socket,
    say: Callable[[str], None],
    base: str,
    teacher: str,
    students: int,
) -> None:
    runner = web.AppRunner(server.app(), handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    say(f"class server for {students} students at {base}/")
    say(f"teacher's view: {base}/teacher/signin?token={teacher}")
    say("Ctrl-C stops it")
    try:
        await stop.wait()
    finally:
        say("stopping: no new runs; terminals closed")
        await runner.cleanup()
