"""The class server, for real: `lab class serve` with a roster of five, its students'
labs in Docker, and real clients (HTTP, WebSockets, a headless browser) signed in as
each student, as nobody, with a forged Origin and with a stale token."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest
import requests

from lab.bench.classroom import Server
from lab.engine import named
from tests.docker.conftest import ENV, ROOT, run_lab_cli, until, wait_for

STUDENTS = ["cls-ada", "cls-bob", "cls-cy", "cls-dee", "cls-eve"]
UDP_SHOUT = ROOT / "examples" / "servers" / "udp_shout.py"


def serve(roster: Path, data: Path) -> Server:
    env = {**os.environ, **ENV, "COLUMNS": "300"}
    return Server(roster, data, args=("--runs-at-once", "2"), env=env, cwd=ROOT)


def stop(served: Server, sig: int = signal.SIGINT) -> int:
    return served.stop(sig)


def links(data: Path) -> dict[str, str]:
    with (data / "sign-in.csv").open() as f:
        return {row["id"]: row["link"] for row in csv.DictReader(f)}


def signed_in(link: str) -> requests.Session:
    session = requests.Session()
    response = session.get(link, allow_redirects=False, timeout=60)
    assert response.status_code == 303, response.text
    session.headers["X-CSRF-Token"] = session.get(link.split("/signin")[0] + "/api/me").json()[
        "csrf"
    ]
    return session


@dataclass
class Class:
    served: Server
    roster: Path
    students: dict[str, requests.Session]
    teacher: requests.Session

    @property
    def base(self) -> str:
        return self.served.base


@pytest.fixture(scope="module")
def klass(
    tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient
) -> Iterator[Class]:
    folder = tmp_path_factory.mktemp("class")
    roster = folder / "roster.csv"
    roster.write_text("id,name\n" + "".join(f"{s},{s.title()}\n" for s in STUDENTS))
    served = serve(roster, folder / "data")
    teacher = requests.Session()
    assert teacher.get(served.teacher_link, allow_redirects=False).status_code == 303
    found = links(folder / "data")
    klass = Class(served, roster, {s: signed_in(found[s]) for s in STUDENTS}, teacher)
    yield klass
    if klass.served.proc.poll() is None:
        assert stop(klass.served) == 0, "\n".join(klass.served.lines)
    left = students_containers(docker_client)
    assert not left, f"left behind: {left}"


def students_containers(client: docker.DockerClient) -> list[str]:
    """Every container of the students' labs, helpers included."""
    return [
        c.name or "?"
        for s in STUDENTS
        for c in client.containers.list(all=True, filters={"label": f"{named.NAME_LABEL}={s}"})
    ]


def lab_of(klass: Class, student: str, timeout: float = 300) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def up() -> bool:
        seen.update(klass.students[student].get(f"{klass.base}/api/lab", timeout=60).json())
        return seen.get("state") == "running" and all(
            h["state"] in ("running", "starting") for h in seen["hosts"]
        )

    wait_for(up, f"{student}'s lab", timeout=timeout)
    return seen


def predict_all(klass: Class, student: str, experiment: str = "dispatch") -> dict[str, bool]:
    found = klass.students[student].get(f"{klass.base}/api/experiments").json()
    claims = next(e for e in found if e["name"] == experiment)["claims"]
    return {c["id"]: True for c in claims}


def post_run(klass: Class, student: str, answers: dict[str, bool] | None = None) -> int:
    response = klass.students[student].post(
        f"{klass.base}/api/runs",
        json={"experiment": "dispatch", "answers": answers or predict_all(klass, student)},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["run"])


def finished(klass: Class, student: str, run: int, timeout: float = 300) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(klass.students[student].get(f"{klass.base}/api/runs/{run}").json())
        return seen["state"] not in ("queued", "running")

    wait_for(done, f"{student}'s run {run}", timeout=timeout)
    return seen


def test_five_students_five_labs_each_their_own(klass: Class) -> None:
    labs = {s: lab_of(klass, s) for s in STUDENTS}
    projects = {s: lab["project"] for s, lab in labs.items()}
    assert projects == {s: named.project_of(s) for s in STUDENTS}
    clients = {
        s: next(h for h in lab["hosts"] if h["name"] == "client")["interfaces"][0]["ip"]
        for s, lab in labs.items()
    }
    assert len(set(clients.values())) == len(STUDENTS), clients  # a subnet each
    for lab in labs.values():  # the server's loopback ports are nothing a student can use
        assert all("published" not in h for h in lab["hosts"])


# (method, path, body) of every route a student's session opens; {run} is a run of theirs.
STUDENT_ROUTES = [
    ("GET", "/api/me", None),
    ("GET", "/api/lab", None),
    ("GET", "/api/experiments", None),
    ("GET", "/api/runs", None),
    ("GET", "/api/runs/{run}", None),
    ("POST", "/api/runs", {"experiment": "dispatch", "answers": {}}),
    ("POST", "/api/checks", None),
    ("POST", "/api/signout", None),
]
TEACHER_ROUTES = [
    ("GET", "/teacher/api/overview", None),
    ("GET", "/teacher/grades/students.csv", None),
    ("POST", f"/teacher/api/students/{STUDENTS[0]}/token", None),
    ("POST", f"/teacher/api/students/{STUDENTS[0]}/revoke", None),
    ("POST", f"/teacher/api/students/{STUDENTS[0]}/stop", None),
]


def form(name: str, data: bytes, role: str = "udp-shout") -> dict[str, tuple[str | None, bytes]]:
    """A check's upload as the page's form sends it: the file and the role."""
    return {"file": (name, data), "role": (None, role.encode())}


def call(
    session: requests.Session, base: str, method: str, path: str, body: Any, **kw: Any
) -> requests.Response:
    if path == "/api/checks":
        return session.request(
            method, base + path, files=form("s.py", b"x = 1\n"), timeout=60, **kw
        )
    return session.request(method, base + path, json=body, timeout=60, **kw)


def test_every_endpoint_refuses_no_session_a_forged_origin_a_missing_csrf_and_others_runs(
    klass: Class,
) -> None:
    ada, bob = STUDENTS[0], STUDENTS[1]
    run = post_run(klass, ada)
    finished(klass, ada, run)
    nobody = requests.Session()
    for method, path, body in STUDENT_ROUTES + TEACHER_ROUTES:
        path = path.format(run=run)
        assert call(nobody, klass.base, method, path, body).status_code == 401, path
        forged = call(
            klass.students[ada],
            klass.base,
            method,
            path,
            body,
            headers={"Origin": "http://evil.example"},
        )
        if method == "POST":
            assert forged.status_code == 403, path
            bare = requests.Session()
            bare.cookies.update(klass.students[ada].cookies)  # the cookie, not the CSRF token
            assert call(bare, klass.base, method, path, body).status_code in (401, 403), path
            crossed = requests.Session()  # ada's cookie with bob's CSRF token
            crossed.cookies.update(klass.students[ada].cookies)
            crossed.headers["X-CSRF-Token"] = klass.students[bob].headers["X-CSRF-Token"]
            assert call(crossed, klass.base, method, path, body).status_code in (401, 403), path
    for method, path, body in TEACHER_ROUTES:  # a student's session is not the teacher's
        assert call(klass.students[ada], klass.base, method, path, body).status_code == 401
    # Another student's run is as absent as one never made.
    assert klass.students[bob].get(f"{klass.base}/api/runs/{run}").status_code == 404
    assert run not in [r["id"] for r in klass.students[bob].get(f"{klass.base}/api/runs").json()]
    assert klass.students[ada].get(f"{klass.base}/api/runs/{run}").status_code == 200
    # A Host that is not this server's (DNS rebinding) is refused before anything else.
    rebound = requests.get(f"{klass.base}/api/me", headers={"Host": "evil.example"}, timeout=30)
    assert rebound.status_code == 421
    assert asyncio.run(websocket_status(klass.base, "/api/live", None)) == 401
    assert asyncio.run(websocket_status(klass.base, "/api/terminal", None)) == 401
    cookie = klass.students[ada].cookies.get("socklab_session")
    assert (
        asyncio.run(websocket_status(klass.base, "/api/terminal", cookie, "http://evil.example"))
        == 403
    )


async def websocket_status(
    base: str, path: str, cookie: str | None, origin: str | None = None
) -> int:
    headers = {"Origin": origin} if origin else {}
    cookies = {"socklab_session": cookie} if cookie else {}
    async with aiohttp.ClientSession(cookies=cookies) as s:
        try:
            async with s.ws_connect(base + path, headers=headers):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_a_reissued_token_ends_the_old_one_and_its_sessions(klass: Class) -> None:
    eve = STUDENTS[4]
    old_link = links(klass.served.data)[eve]
    reissued = klass.teacher.post(
        f"{klass.base}/teacher/api/students/{eve}/token",
        headers={
            "X-CSRF-Token": klass.teacher.get(f"{klass.base}/teacher/api/overview").json()["csrf"]
        },
    )
    assert reissued.status_code == 200, reissued.text
    stale = klass.students[eve]
    for method, path, body in STUDENT_ROUTES:
        assert call(stale, klass.base, method, path.format(run=1), body).status_code == 401, path
    assert requests.get(old_link, allow_redirects=False, timeout=60).status_code == 401
    new_link = f"{klass.base}/signin?token={reissued.json()['token']}"
    klass.students[eve] = signed_in(new_link)
    assert klass.students[eve].get(f"{klass.base}/api/me").json()["id"] == eve
    # Sign-in is rate-limited per address: guessing stops long before it could find one.
    codes = [
        requests.get(f"{klass.base}/signin?token={eve}.guess{i}", allow_redirects=False).status_code
        for i in range(15)
    ]
    assert 429 in codes, codes
    assert set(codes) <= {401, 429}, codes


def test_uploads_are_limited_in_size_and_type(klass: Class) -> None:
    ada = klass.students[STUDENTS[0]]
    url = f"{klass.base}/api/checks"
    big = ada.post(url, files=form("s.py", b"#" * 200_001, "udp-shout"))
    assert big.status_code == 413
    assert ada.post(url, files=form("s.sh", b"echo\n", "udp-shout")).status_code == 415
    assert ada.post(url, files=form("s.py", b"\xff\xfe", "udp-shout")).status_code == 415
    assert ada.post(url, files=form("s.py", b"x=1\n", "db")).status_code == 400
    assert ada.post(url, json={"file": "x"}).status_code == 415


def test_predictions_runs_checks_and_grades_go_through_the_server(klass: Class) -> None:
    bob = STUDENTS[1]
    answers = predict_all(klass, bob)
    answers["tcp-refused"] = False  # a wrong prediction: it does hold
    run = finished(klass, bob, post_run(klass, bob, answers))
    assert run["state"] == "done", run
    assert run["passed"], run
    assert run["answers"] == answers
    assert run["result"]["predictions"]["by"] == bob
    assert run["result"]["predictions"]["by_claim"]["tcp-refused"] is False
    posted = klass.students[bob].post(
        f"{klass.base}/api/checks", files=form("udp_shout.py", UDP_SHOUT.read_bytes())
    )
    assert posted.status_code == 201, posted.text
    check = finished(klass, bob, int(posted.json()["run"]))
    assert check["state"] == "done", check
    assert check["passed"], check
    grades = klass.teacher.get(f"{klass.base}/teacher/grades/students.csv").text
    row = next(r for r in csv.DictReader(grades.splitlines()) if r["student"] == bob)
    assert row["predictions_right"] != row["predictions_total"], row  # counted wrong
    assert "dispatch/tcp-refused" in row["predicted_wrong"], row
    checks = list(
        csv.DictReader(
            klass.teacher.get(f"{klass.base}/teacher/grades/checks.csv").text.splitlines()
        )
    )
    assert {r["verdict"] for r in checks if r["student"] == bob} == {"held"}
    view = klass.teacher.get(f"{klass.base}/teacher/api/overview").json()
    assert any(c["claim"] == "tcp-refused" and c["right"] < c["students"] for c in view["claims"])
    report = klass.teacher.get(f"{klass.base}/teacher/grades/report.html")
    assert report.status_code == 200
    assert bob in report.text


def test_runs_queue_to_what_the_machine_holds_and_each_sees_its_place(klass: Class) -> None:
    runs = {s: post_run(klass, s) for s in STUDENTS}
    places = [
        r.get("place")
        for s in STUDENTS
        for r in klass.students[s].get(f"{klass.base}/api/runs").json()
        if r["id"] == runs[s]
    ]
    done = {s: finished(klass, s, run) for s, run in runs.items()}
    assert all(d["state"] == "done" for d in done.values()), done
    assert any(p for p in places), places  # five at once, two at a time: some waited
    with sqlite3.connect(klass.served.data / "class.db") as db:
        spans = db.execute(
            "SELECT started_at, ended_at FROM runs WHERE id IN ({})".format(
                ",".join("?" * len(runs))
            ),
            list(runs.values()),
        ).fetchall()
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    assert most <= 2, spans  # never more than --runs-at-once ran together


def test_a_students_dead_lab_is_restored_on_their_next_action(
    klass: Class, docker_client: docker.DockerClient
) -> None:
    cy = STUDENTS[2]
    lab_of(klass, cy)
    victim = docker_client.containers.get(f"{named.project_of(cy)}-tcp-shout-1")
    victim.kill()
    run = finished(klass, cy, post_run(klass, cy))
    assert run["state"] == "done", run
    assert run["passed"], run
    victim.reload()
    assert victim.status == "running"


def terminal(base: str, cookie: str, typed: bytes, until: bytes, timeout: float = 60) -> str:
    async def talk() -> str:
        async with (
            aiohttp.ClientSession(cookies={"socklab_session": cookie}) as s,
            s.ws_connect(base + "/api/terminal", headers={"Origin": base}) as ws,
        ):
            await ws.send_str(json.dumps({"resize": [30, 100]}))
            await ws.send_bytes(typed)
            out = b""
            deadline = time.monotonic() + timeout
            while until not in out and time.monotonic() < deadline:
                message = await ws.receive(timeout=deadline - time.monotonic())
                if message.type != aiohttp.WSMsgType.BINARY:
                    break
                out += message.data
            return out.decode(errors="replace")

    return asyncio.run(talk())


def test_a_terminal_is_a_shell_without_privilege_in_the_students_own_client(
    klass: Class, docker_client: docker.DockerClient
) -> None:
    dee = STUDENTS[3]
    lab = lab_of(klass, dee)
    ip = next(h for h in lab["hosts"] if h["name"] == "client")["interfaces"][0]["ip"]
    cookie = klass.students[dee].cookies.get("socklab_session") or ""
    out = terminal(
        klass.base,
        cookie,
        b"echo U=$(id -u); grep CapEff /proc/self/status; ls /var/run/docker.sock; "
        b"hostname -I; sleep 777 & echo E$((1+1))ND\n",
        b"E2ND",  # not in the echo of what was typed
    )
    assert "U=10001" in out, out
    assert "CapEff:\t0000000000000000" in out, out
    assert "No such file or directory" in out, out
    assert ip in out, out
    client = docker_client.containers.get(f"{named.project_of(dee)}-client-1")
    assert client.attrs["HostConfig"]["CapAdd"] in (None, [])
    assert not [m for m in client.attrs["Mounts"] if "docker.sock" in m.get("Source", "")]

    def shell_gone() -> bool:  # closing the terminal ends what it started
        return b"sleep 777" not in client.exec_run(["ps", "-eo", "args"]).output

    wait_for(shell_gone, "the closed terminal's processes to end", timeout=30)


def test_sigkill_mid_run_loses_no_record_and_marks_the_run_interrupted(klass: Class) -> None:
    ada = STUDENTS[0]
    db_path = klass.served.data / "class.db"
    posted = klass.students[ada].post(
        f"{klass.base}/api/checks", files=form("udp_shout.py", UDP_SHOUT.read_bytes())
    )
    cut = int(posted.json()["run"])
    wait_for(
        lambda: (
            klass.students[ada].get(f"{klass.base}/api/runs/{cut}").json()["state"] == "running"
        ),
        "the check to start",
    )
    with sqlite3.connect(db_path) as db:
        before = db.execute(
            "SELECT id, student, experiment, answers, made_at FROM predictions"
        ).fetchall()
        done_before = db.execute("SELECT id, result FROM runs WHERE state = 'done'").fetchall()
    klass.served.proc.kill()
    klass.served.proc.wait(timeout=60)
    klass.served = serve(klass.roster, klass.served.data)
    assert any("interrupted" in line for line in klass.served.lines)
    with sqlite3.connect(db_path) as db:
        after = db.execute(
            "SELECT id, student, experiment, answers, made_at FROM predictions"
        ).fetchall()
        done_after = dict(db.execute("SELECT id, result FROM runs WHERE state = 'done'").fetchall())
        state = db.execute("SELECT state, error FROM runs WHERE id = ?", (cut,)).fetchone()
    assert after == before
    assert before
    assert all(done_after[i] == result for i, result in done_before)
    assert state[0] == "interrupted"
    assert "stopped" in state[1]
    # The sessions are in the database: the students are still signed in, on the new port.
    for student in STUDENTS:
        old = klass.students[student]
        again = requests.Session()
        again.cookies.update(old.cookies)
        again.headers["X-CSRF-Token"] = old.headers["X-CSRF-Token"]
        klass.students[student] = again
        assert again.get(f"{klass.base}/api/me").status_code == 200
    run = finished(klass, ada, post_run(klass, ada))  # the lab the cut run left is mended
    assert run["state"] == "done", run
    assert run["passed"], run


def test_a_student_predicts_runs_and_types_in_a_terminal_in_the_browser(
    klass: Class, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    bob = STUDENTS[1]
    old_link = links(klass.served.data)[bob]
    token = old_link.split("token=", 1)[1]
    browser.get(f"{klass.base}/signin?token={token}")
    until(
        browser, "document.querySelectorAll('#claims tbody tr').length > 0", "the prediction form"
    )
    assert browser.find_element(By.ID, "run").get_attribute("disabled")  # nothing predicted yet
    rows = browser.find_elements(By.CSS_SELECTOR, "#claims tbody tr")
    for tr in rows:
        tr.find_elements(By.CSS_SELECTOR, "input")[0].click()  # "will hold", each claim
    assert not browser.find_element(By.ID, "run").get_attribute("disabled")
    browser.find_element(By.ID, "run").click()
    until(
        browser,
        "document.getElementById('run-note').textContent.includes('queued')",
        "the run queued",
    )
    until(
        browser,
        "[...document.querySelectorAll('#run-list tbody tr')].some(r => r.children[2].textContent === 'done')",
        "the run done",
        timeout=300,
    )
    until(
        browser, "document.querySelectorAll('#run-detail table tr').length > 1", "the run's checks"
    )
    until(browser, "document.querySelectorAll('#hosts tbody tr').length === 3", "the lab's hosts")
    browser.find_element(By.ID, "open-terminal").click()
    until(browser, "window.socklabTerminal !== undefined", "the terminal")
    until(browser, "document.querySelector('.xterm-helper-textarea') !== null", "xterm's input")
    browser.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea").send_keys("echo hi-$((6*7))\n")
    lines = (
        "(() => { const t = window.socklabTerminal; const b = t.buffer.active || t.buffer;"
        " const out = [];"
        " for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));"
        " return out.join('\\n'); })()"
    )
    until(browser, f"{lines}.includes('hi-42')", "the shell's answer in the terminal")
    ARTIFACTS = ROOT / "test-artifacts" / "class"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "student.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_ctrl_c_stops_the_server_and_removes_every_students_lab(
    klass: Class, docker_client: docker.DockerClient
) -> None:
    assert stop(klass.served) == 0, "\n".join(klass.served.lines)
    left = students_containers(docker_client)
    assert not left, left
    with sqlite3.connect(klass.served.data / "class.db") as db:
        assert not db.execute("SELECT id FROM runs WHERE state IN ('running')").fetchall()


def test_bench_class_on_two_students_measures_and_leaves_no_lab(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    done = run_lab_cli("bench", "class", "--tiny", "--out", str(tmp_path), timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    (bench,) = json.loads((tmp_path / "latest.json").read_text())["benchmarks"]
    data = bench["data"]
    assert data["students"] == 2
    assert data["finish_seconds"]["n"] == data["rounds"] == 2
    assert 0 < data["latency_ms"]["p50"] <= data["latency_ms"]["p99"] <= data["latency_ms"]["max"]
    assert data["server_rss_mib"]["max"] > 10
    assert bench["met"] is False  # two students are not the thirty the target names
    left = [p for p in named.projects(docker_client) if p.startswith(named.project_of("bench-s"))]
    assert left == []
