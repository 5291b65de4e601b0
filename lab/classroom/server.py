"""The class server's web side: pages, a JSON API, and two WebSockets per student.

Every route but the sign-in pages and static files goes through ``guarded``: the
Host must name this server, a browser's Origin must be its own, a session cookie
must name a student (``/api``) or the teacher (``/teacher/api``), and anything that
changes something must carry the session's CSRF token. A student's requests are
answered from their own records and their own lab only: a run id of another
student is "not found", as one that does not exist. Blocking work (Docker, scrypt,
SQLite) runs in threads, so pages stay responsive while labs start and runs go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

from lab import journal
from lab.classroom import grades
from lab.classroom.auth import CSRF_HEADER, STUDENT_COOKIE, TEACHER_COOKIE, Gate, Who
from lab.classroom.labs import Labs
from lab.classroom.runs import Runs
from lab.classroom.store import Store, TooManyWaiting
from lab.classroom.terminals import Terminals
from lab.errors import LabError

STATIC = Path(__file__).parent / "static"
MAX_REQUEST = 256 * 1024  # bytes: the largest upload and a JSON body, with room
MAX_UPLOAD = 100_000  # a server under check may be this large (lab.check.server)
UPLOAD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}\.py$")
WAITING_PER_STUDENT = 3  # runs a student may have queued or running at once
THREADS = 256
SESSION_CHECK = 10.0  # seconds between two looks at an open socket's session
GRADE_FILES = {"students.csv", "claims.csv", "checks.csv", "report.html"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a sign-in link's token must not leak onwards
    "X-Frame-Options": "DENY",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC = ("/", "/signin", "/teacher", "/teacher/signin", "/favicon.ico", "/healthz")


def refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=HEADERS)


@dataclass
class ClassServer:
    store: Store
    gate: Gate
    labs: Labs
    capacity: int
    idle_after: float  # seconds without action before a student's lab is stopped; 0: never
    secure_cookies: bool = False
    sockets: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None
    runs: Runs | None = None
    arriving: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    tails: dict[str, threading.Thread] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    terms: Terminals = field(init=False)
    sending: set[asyncio.Future[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.terms = Terminals(self.labs)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guarded], client_max_size=MAX_REQUEST)
        r = app.router
        r.add_get("/", self.page_student)
        r.add_get("/signin", self.signin_link)
        r.add_post("/signin", self.signin_form)
        r.add_get("/teacher", self.page_teacher)
        r.add_get("/teacher/signin", self.teacher_signin)
        r.add_get("/healthz", self.healthz)
        r.add_get("/favicon.ico", self.no_icon)
        r.add_get("/static/{path:.+}", self.static)
        r.add_get("/api/me", self.api_me)
        r.add_post("/api/signout", self.api_signout)
        r.add_get("/api/lab", self.api_lab)
        r.add_get("/api/experiments", self.api_experiments)
        r.add_get("/api/runs", self.api_runs)
        r.add_post("/api/runs", self.api_run)
        r.add_get("/api/runs/{id}", self.api_one_run)
        r.add_post("/api/checks", self.api_check)
        r.add_get("/api/live", self.api_live)
        r.add_get("/api/terminal", self.api_terminal)
        r.add_get("/teacher/api/overview", self.teacher_overview)
        r.add_get("/teacher/grades/{name}", self.teacher_grades)
        r.add_post("/teacher/api/students/{id}/token", self.teacher_reissue)
        r.add_post("/teacher/api/students/{id}/revoke", self.teacher_revoke)
        r.add_post("/teacher/api/students/{id}/stop", self.teacher_stop)
        app.on_startup.append(self.started)
        app.on_shutdown.append(self.shutting_down)
        return app

    # --- the one gate every request passes ---

    @web.middleware
    async def guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.gate.host_ok(request.headers.get("Host")):
            return web.Response(status=421, text="this server does not answer to that name\n")
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        changing = request.method not in ("GET", "HEAD") or websocket
        if changing and not self.gate.origin_ok(request.headers.get("Origin")):
            return refuse(403, "foreign origin")
        path = request.path
        if path in PUBLIC or path.startswith("/static/"):
            response = await handler(request)
        else:
            teacher = path.startswith("/teacher/")
            who = await asyncio.to_thread(
                self.gate.teacher if teacher else self.gate.student,
                request.cookies.get(TEACHER_COOKIE if teacher else STUDENT_COOKIE),
            )
            if who is None:
                return refuse(401, "not signed in, or the session ended: sign in again")
            if (
                changing
                and not websocket
                and not self.gate.csrf_ok(who, request.headers.get(CSRF_HEADER))
            ):
                return refuse(403, "missing or wrong CSRF token: reload the page")
            request["who"] = who
            response = await handler(request)
        if not response.prepared:
            response.headers.update(HEADERS)
            if path.startswith(("/api/", "/teacher/")):
                response.headers["Cache-Control"] = "no-store"
        return response

    @staticmethod
    def who(request: web.Request) -> Who:
        who: Who = request["who"]
        return who

    # --- life ---

    async def started(self, app: web.Application) -> None:
        self.loop = asyncio.get_running_loop()
        # Blocking work runs in threads: an open terminal holds one, a run one, a lab
        # starting one. The default pool (CPUs + 4) would let a few of them stall every
        # page; these threads mostly wait on Docker, so many are cheap.
        self.loop.set_default_executor(ThreadPoolExecutor(THREADS, "socklab-class"))
        self.runs = Runs(self.store, self.labs, self.capacity, self.notify)
        self.runs.start()
        if self.idle_after > 0:
            self.tasks.append(asyncio.create_task(self.stop_idle_labs()))

    async def shutting_down(self, app: web.Application) -> None:
        self.stop.set()
        await self.terms.close_all()
        for task in [*self.tasks, *self.arriving.values()]:
            task.cancel()
        if self.runs is not None:
            await self.runs.stop()
        for sockets in list(self.sockets.values()):
            for ws in list(sockets):
                await ws.close()

    def notify(self, student: str, message: dict[str, Any]) -> None:
        """From any thread: a message to every open page of one student."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        text = json.dumps(message, default=str)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._send_all, student, text)

    def _send_all(self, student: str, text: str) -> None:
        for ws in list(self.sockets.get(student, ())):
            if not ws.closed:
                task = asyncio.ensure_future(self._send(ws, text))
                self.sending.add(task)  # held until sent: the loop keeps only weak references
                task.add_done_callback(self.sending.discard)

    @staticmethod
    async def _send(ws: web.WebSocketResponse, text: str) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(text)

    def arrive(self, student: str) -> None:
        """A student's lab started (or mended) in the background on their arrival."""
        task = self.arriving.get(student)
        if task is not None and not task.done():
            return

        async def bring_up() -> None:
            def progress(message: str, *, detail: bool = False) -> None:
                if not detail:
                    self.notify(student, {"kind": "lab", "text": message})

            try:
                await asyncio.to_thread(self.labs.ensure, student, progress)
                self.notify(student, {"kind": "lab", "text": "your lab is up", "up": True})
            except LabError as exc:
                self.notify(student, {"kind": "lab", "text": exc.line(), "error": True})
            except Exception as exc:  # Docker's own errors: the student sees them too
                self.notify(
                    student, {"kind": "lab", "text": f"{type(exc).__name__}: {exc}", "error": True}
                )

        self.arriving[student] = asyncio.create_task(bring_up())

    def in_use(self, student: str) -> bool:
        """A run queued or going, or a terminal open: their lab is not idle."""
        running = self.runs.running if self.runs else set()
        queued = {s for _, s in self.store.queue()}
        return student in running or student in queued or student in self.terms.busy()

    async def stop_idle_labs(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.idle_after / 2))
            for student in self.labs.idle(self.idle_after, set()):
                try:
                    stopped = await asyncio.to_thread(
                        self.labs.stop_if_idle, student, self.idle_after, self.in_use
                    )
                except Exception as exc:  # one lab's trouble must not end the idle watch
                    stopped = False
                    self.notify(student, {"kind": "lab", "text": f"{type(exc).__name__}: {exc}"})
                if stopped:
                    self.notify(
                        student,
                        {
                            "kind": "lab",
                            "text": "your lab was stopped while "
                            "idle: it starts again on your next action",
                        },
                    )

    # --- pages ---

    async def page(self, name: str) -> web.StreamResponse:
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})

    async def page_student(self, request: web.Request) -> web.StreamResponse:
        who = await asyncio.to_thread(self.gate.student, request.cookies.get(STUDENT_COOKIE))
        return await self.page("student.html" if who else "signin.html")

    async def page_teacher(self, request: web.Request) -> web.StreamResponse:
        who = self.gate.teacher(request.cookies.get(TEACHER_COOKIE))
        return await self.page("teacher.html" if who else "teacher-signin.html")

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def no_icon(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def static(self, request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        path = (STATIC / relative).resolve()
        if STATIC.resolve() not in path.parents or not path.is_file() or ".." in relative:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "max-age=300"})

    # --- signing in and out ---

    async def _sign_in(self, request: web.Request, token: str) -> web.StreamResponse:
        wait = self.gate.throttled(request.remote or "?")
        if wait:
            return web.Response(
                status=429,
                text=f"too many sign-in attempts: try again in {wait:.0f} s\n",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        who = await asyncio.to_thread(self.gate.sign_in, token)
        if who is None:
            self.gate.failed()
            return web.Response(
                status=401,
                text="that sign-in token is not valid (mistyped, revoked or reissued): "
                "ask your teacher for your link\n",
            )
        self.gate.succeeded(request.remote or "?")
        response = web.Response(status=303, headers={"Location": "/"})
        self._cookie(response, STUDENT_COOKIE, who.session)
        self.arrive(who.student)
        return response

    def _cookie(self, response: web.StreamResponse, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookies,
            path="/",
            max_age=12 * 3600,
        )

    async def signin_link(self, request: web.Request) -> web.StreamResponse:
        token = request.query.get("token")
        if token is None:
            return await self.page("signin.html")
        return await self._sign_in(request, token)

    async def signin_form(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        return await self._sign_in(request, str(form.get("token", "")))

    async def teacher_signin(self, request: web.Request) -> web.StreamResponse:
        if self.gate.throttled(request.remote or "?"):
            return web.Response(status=429, text="too many sign-in attempts\n")
        who = await asyncio.to_thread(self.gate.teacher_sign_in, request.query.get("token", ""))
        if who is None:
            self.gate.failed()
            return web.Response(status=401, text="not the teacher's token\n")
        self.gate.succeeded(request.remote or "?")
        response = web.Response(status=303, headers={"Location": "/teacher"})
        self._cookie(response, TEACHER_COOKIE, who.session)
        return response

    async def api_signout(self, request: web.Request) -> web.StreamResponse:
        await asyncio.to_thread(self.gate.sign_out, self.who(request))
        response = web.json_response({"ok": True})
        response.del_cookie(STUDENT_COOKIE, path="/")
        return response

    # --- a student's API ---

    async def api_me(self, request: web.Request) -> web.StreamResponse:
        who = self.who(request)
        record = await asyncio.to_thread(self.store.student, who.student)
        self.arrive(who.student)
        return web.json_response(
            {
                "id": who.student,
                "name": record.name if record else who.student,
                "csrf": self.gate.csrf(who),
                "roles": ["tcp-shout", "udp-shout"],
                "max_upload": MAX_UPLOAD,
            }
        )

    async def api_lab(self, request: web.Request) -> web.StreamResponse:
        student = self.who(request).student
        try:
            state = await asyncio.to_thread(self._lab_view, student)
        except LabError as exc:
            return refuse(503, exc.line())
        return web.json_response(state, dumps=_dumps)

    def _lab_view(self, student: str) -> dict[str, Any]:
        from lab.web.live import Live

        lab = self.labs.open(student)
        if not lab.is_running():
            return {"state": "absent", "hosts": []}
        topology = Live(lab, lambda _: None).topology()
        # Published ports are on the server's loopback: nothing a student can reach.
        for host in topology.get("hosts", []):
            host.pop("published", None)
        return {"state": "running", **topology}

    async def api_experiments(self, request: web.Request) -> web.StreamResponse:
        student = self.who(request).student
        return web.json_response(await asyncio.to_thread(self._experiments, student))

    def _experiments(self, student: str) -> list[dict[str, Any]]:
        from lab.web.live import Live

        return Live(self.labs.open(student), lambda _: None).experiments()

    async def api_runs(self, request: web.Request) -> web.StreamResponse:
        student = self.who(request).student
        runs = await asyncio.to_thread(self.store.runs, student)
        places = {run: place for place, (run, _) in enumerate(self.store.queue(), start=1)}
        return web.json_response(
            [{**r.public(), "place": places.get(r.id)} for r in runs], dumps=_dumps
        )

    async def api_one_run(self, request: web.Request) -> web.StreamResponse:
        student = self.who(request).student
        try:
            number = int(request.match_info["id"])
        except ValueError:
            return refuse(404, "no such run")
        run = await asyncio.to_thread(self.store.run, number, student)
        if run is None:  # another student's run is as absent as one never made
            return refuse(404, "no such run")
        result = await asyncio.to_thread(self.store.result, number, student)
        return web.json_response({**run.public(), "result": result}, dumps=_dumps)

    async def _queue(self, queue: Callable[..., int], *args: Any) -> web.Response:
        """A run queued, unless the student has too many waiting (counted in the same
        transaction as the insert: requests at once cannot all slip under the limit)."""
        try:
            run = await asyncio.to_thread(queue, *args, WAITING_PER_STUDENT)
        except TooManyWaiting as exc:
            return refuse(429, exc.what)
        assert self.runs is not None
        self.runs.queued()
        return web.json_response({"ok": True, "run": run}, status=201)

    async def api_run(self, request: web.Request) -> web.StreamResponse:
        student = self.who(request).student
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return refuse(400, "the body is not JSON")
        if not isinstance(body, dict):
            return refuse(400, "expected {experiment, answers}")
        experiments = {e["name"]: e for e in await asyncio.to_thread(self._experiments, student)}
        name = body.get("experiment")
        if name not in experiments:
            return refuse(400, f"no experiment {name!r}")
        if experiments[name]["lacking"]:
            return refuse(400, f"{name} needs {', '.join(experiments[name]['lacking'])}")
        answers = body.get("answers")
        claims = [c["id"] for c in experiments[name]["claims"]]
        if (
            not isinstance(answers, dict)
            or sorted(answers) != sorted(claims)
            or not all(isinstance(v, bool) for v in answers.values())
        ):
            return refuse(
                400, "predict every claim first: true or false for each of " + ", ".join(claims)
            )
        return await self._queue(self.store.queue_experiment, student, str(name), answers)

    async def api_check(self, request: web.Request) -> web.StreamResponse:
        student = self.who(request).student
        if not request.content_type.startswith("multipart/form-data"):
            return refuse(415, "upload the server as multipart/form-data (the page's form)")
        role, name, data = "", "", b""
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "role":
                role = (await part.text())[:40]
            elif part.name == "file":
                name = part.filename or ""
                data = await part.read()
                if len(data) > MAX_UPLOAD:
                    return refuse(413, f"the file is {len(data)} bytes: at most {MAX_UPLOAD}")
        if role not in ("tcp-shout", "udp-shout"):
            return refuse(400, "role: tcp-shout or udp-shout")
        if not UPLOAD_NAME.fullmatch(name):
            return refuse(415, "a Python file: a name ending in .py (letters, digits, _ . -)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return refuse(415, "the file is not UTF-8 text")
        if "\x00" in text or not text.strip():
            return refuse(415, "the file is not Python source text")
        return await self._queue(self.store.queue_check, student, role, name, text)

    async def api_live(self, request: web.Request) -> web.StreamResponse:
        student = self.who(request).student
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
        await ws.prepare(request)
        watch = asyncio.create_task(self.end_when_signed_out(request, ws))
        self.sockets.setdefault(student, set()).add(ws)
        self._tail(student)
        self.runs.tell_queue() if self.runs else None
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            watch.cancel()
            self.sockets[student].discard(ws)
        return ws

    async def end_when_signed_out(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        """A socket outlives its handshake: it ends once its session does (revoked or
        reissued from the command line, expired, or off the roster)."""
        cookie = request.cookies.get(STUDENT_COOKIE)
        while not ws.closed:
            await asyncio.sleep(SESSION_CHECK)
            if await asyncio.to_thread(self.gate.student, cookie) is None:
                await ws.close()

    def _tail(self, student: str) -> None:
        """What happens in the student's lab (its journal), to their open pages."""
        thread = self.tails.get(student)
        if thread is not None and thread.is_alive():
            return

        def follow() -> None:
            tail = journal.Tail(journal.path_for(self.labs.open(student).project))
            while not self.stop.wait(0.2) and self.sockets.get(student):
                for happening in tail.read():
                    self.notify(student, {"kind": "happening", "happening": happening})

        thread = threading.Thread(target=follow, daemon=True, name=f"journal-{student}")
        self.tails[student] = thread
        thread.start()

    async def api_terminal(self, request: web.Request) -> web.StreamResponse:
        return await self.terms.serve(self.who(request).student, request, self.end_when_signed_out)

    # --- the teacher's API ---

    async def _end_sessions(self, student: str) -> None:
        """A token revoked or reissued: the pages and terminals it opened end now."""
        for ws in list(self.sockets.get(student, ())):
            await ws.close()
        await self.terms.close(student)

    async def teacher_overview(self, request: web.Request) -> web.StreamResponse:
        view = await asyncio.to_thread(grades.overview, self.store)
        view["queue"] = len(self.store.queue())
        view["running"] = sorted(self.runs.running) if self.runs else []
        view["capacity"] = self.capacity
        view["csrf"] = self.gate.csrf(self.who(request))
        return web.json_response(view, dumps=_dumps)

    async def teacher_grades(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in GRADE_FILES:
            return refuse(404, f"one of: {', '.join(sorted(GRADE_FILES))}")
        text = (await asyncio.to_thread(grades.files, self.store))[name]
        kind = "text/html" if name.endswith(".html") else "text/csv"
        return web.Response(text=text, content_type=kind, charset="utf-8")

    async def teacher_reissue(self, request: web.Request) -> web.StreamResponse:
        from lab.classroom import tokens

        student = request.match_info["id"]
        token, hashed = await asyncio.to_thread(tokens.issue, student)
        try:
            await asyncio.to_thread(self.store.set_token, student, hashed)
        except LabError as exc:
            return refuse(404, exc.line())
        await self._end_sessions(student)
        return web.json_response({"ok": True, "student": student, "token": token})

    async def teacher_revoke(self, request: web.Request) -> web.StreamResponse:
        student = request.match_info["id"]
        try:
            await asyncio.to_thread(self.store.set_token, student, None)
        except LabError as exc:
            return refuse(404, exc.line())
        await self._end_sessions(student)
        return web.json_response({"ok": True, "student": student})

    async def teacher_stop(self, request: web.Request) -> web.StreamResponse:
        student = request.match_info["id"]
        if student not in self.labs.students:
            return refuse(404, f"no student {student!r}")
        stopped = await asyncio.to_thread(self.labs.stop, student)
        return web.json_response({"ok": True, "stopped": stopped})


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
