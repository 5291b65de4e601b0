"""`check` on the real lab: for every property, a server of our own that breaks exactly it
(tests/docker/check_servers/) is flagged on it and on nothing else; the correct servers,
threaded and asyncio, fail nothing; the seed's servers are flagged for each bug the
kernel can show; and the command line: its lines, its result file, exit code 6, the role's
process back afterwards and nothing left behind."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

import lab as socklab
from lab.backends.engine import Engine
from lab.backends.model import PROJECT_LABEL
from lab.check import ROLES
from lab.check.runner import rejudge
from lab.engine.helpers import ROLE, ROLE_LABEL
from lab.experiments.model import Result
from lab.grading.collect import problem
from tests.docker.conftest import PROJECT, ROOT, run_lab_cli, settled, start_lab_cli, wait_for

SERVERS = Path(__file__).parent / "check_servers"
EXAMPLES = ROOT / "examples" / "servers"

# file -> what it must fail; what it may leave not judged beyond partial-send, and why.
BROKEN = {
    "tcp_answers": {"answers"},
    "tcp_non_ascii": {"non-ascii"},
    "tcp_split_character": {"split-character"},
    "tcp_large": {"large"},
    "tcp_slow_reader": {"slow-reader"},
    "tcp_sequential": {"sequential"},
    "tcp_concurrent": {"concurrent"},
    "tcp_reset": {"reset"},
    "tcp_half_close": {"half-close"},
    "tcp_reachable": {"reachable"},
    "tcp_restart": {"restart"},
    "tcp_not_text": {"not-text"},
    "udp_answers": {"answers"},
    "udp_large": {"large"},
    "udp_sender_address": {"sender-address"},
    "udp_non_ascii": {"non-ascii"},
    "udp_not_text": {"not-text"},
    "udp_reachable": {"reachable"},
    "udp_restart": {"restart"},
}
# Hidden by the failure itself: a large message refused is refused to a slow reader too;
# a server that serves one client cannot show two at once, nor what follows a reset.
HIDDEN = {
    "tcp_large": {"slow-reader"},
    "tcp_sequential": {"concurrent", "reset", "half-close", "not-text"},
}


def role_of(name: str) -> str:
    return f"{name.split('_')[0]}-shout"


def by_status(result: Result) -> tuple[set[str], set[str]]:
    failed = {c.id for c in result.checks if c.judged and not c.held}
    not_judged = {c.id for c in result.checks if not c.judged}
    return failed, not_judged


def helpers_left(lab: Engine) -> list[str]:
    filters = {"label": [f"{PROJECT_LABEL}={PROJECT}", f"{ROLE_LABEL}={ROLE}"]}
    return [c["Names"][0] for c in lab.client.api.containers(all=True, filters=filters)]


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_server_that_breaks_one_property_is_flagged_on_it_alone(
    net: socklab.Lab, name: str
) -> None:
    result = net.check(SERVERS / f"{name}.py", role_of(name))
    failed, not_judged = by_status(result)
    shown = "\n".join(f"{c.id}: {c.held} {c.judged} {c.observed}" for c in result.checks)
    assert failed == BROKEN[name], shown
    assert not_judged <= {"partial-send"} | HIDDEN.get(name, set()), shown
    assert [c.held for c in rejudge(result.to_json())] == [c.held for c in result.checks]


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("tcp_shout", "tcp-shout"),
        ("tcp_shout_asyncio", "tcp-shout"),
        ("udp_shout", "udp-shout"),
        ("udp_shout_asyncio", "udp-shout"),
    ],
)
def test_a_correct_server_fails_nothing(net: socklab.Lab, name: str, role: str) -> None:
    result = net.check(EXAMPLES / f"{name}.py", role)
    failed, not_judged = by_status(result)
    shown = "\n".join(f"{c.id}: {c.observed}" for c in result.checks)
    assert failed == set(), shown
    # A blocking sendall is taken whole by the kernel: whether partial sends are finished
    # cannot be seen then, and is said so; asyncio's non-blocking sends come back short.
    assert not_judged <= ({"partial-send"} if "asyncio" not in name else set()), shown
    assert len(result.checks) == len(ROLES[role].applicable())
    assert result.passed


def test_the_seeds_servers_are_flagged_for_each_bug_the_kernel_shows(net: socklab.Lab) -> None:
    tcp = net.check(EXAMPLES / "seed_tcp.py", "tcp-shout")
    failed, not_judged = by_status(tcp)
    verdicts = {c.id: c for c in tcp.checks}
    # one client, then it exits; each recv decoded alone; no SO_REUSEADDR
    assert {"sequential", "split-character", "not-text", "restart"} <= failed
    assert (
        "EADDRINUSE" in verdicts["restart"].observed or "Errno 98" in verdicts["restart"].observed
    )
    # send, not sendall: latent on a blocking socket, so not judged, with the reason
    assert "partial-send" in not_judged
    assert "whole" in verdicts["partial-send"].observed
    udp = net.check(EXAMPLES / "seed_udp.py", "udp-shout")
    failed, _ = by_status(udp)
    assert failed == {"large", "not-text"}  # and "udp works tho": it answers after a restart
    assert "1000 bytes" in {c.id: c for c in udp.checks}["large"].observed


def test_the_command_prints_one_line_a_property_saves_a_result_and_exits_6(
    net: socklab.Lab, lab: Engine, tmp_path: Path
) -> None:
    done = run_lab_cli(
        "-p",
        PROJECT,
        "check",
        str(EXAMPLES / "seed_udp.py"),
        "--as",
        "udp-shout",
        "--results",
        str(tmp_path),
        "--by",
        "ada",
        cwd=tmp_path,
        timeout=180,
    )
    assert done.returncode == 6, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("  ")]
    assert [line.split()[1] for line in lines if line.split()[0] in ("ok", "FAIL")] == [
        p.id for p in ROLES["udp-shout"].applicable()
    ]
    assert "--explain" in done.stdout
    saved = list(tmp_path.glob("check-udp-shout-*.json"))
    assert len(saved) == 1
    data = json.loads(saved[0].read_text())
    assert problem(data) is None  # valid against the published schema, and consistent
    assert data["facts"]["check"]["by"] == "ada"
    explained = run_lab_cli(
        "-p",
        PROJECT,
        "check",
        str(EXAMPLES / "udp_shout.py"),
        "--as",
        "udp-shout",
        "--explain",
        "--results",
        str(tmp_path),
        cwd=tmp_path,
        timeout=180,
    )
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.count("seen:") == len(ROLES["udp-shout"].applicable())
    settled(lab)  # udp-shout is back, healthy
    assert helpers_left(lab) == []


def test_a_server_that_never_listens_is_one_clear_line(net: socklab.Lab, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import socket\nraise SystemExit('no port for me')\n")
    done = run_lab_cli("-p", PROJECT, "check", str(broken), cwd=tmp_path, timeout=120)
    assert done.returncode == 6, done.stderr
    assert "broken.py exited before it listened on 8080/tcp: no port for me" in done.stderr
    elsewhere = tmp_path / "elsewhere.py"
    elsewhere.write_text((EXAMPLES / "tcp_shout.py").read_text())
    done = run_lab_cli(
        "-p", PROJECT, "check", str(elsewhere), "--port", "9000", cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr  # it reads $PORT: any port works


@pytest.mark.parametrize(("server", "assignment"), [("echo.py", "echo.yaml"), ("kv.py", "kv.yaml")])
def test_a_teachers_assignment_is_checked_on_the_properties_that_apply(
    net: socklab.Lab, server: str, assignment: str
) -> None:
    result = net.check(EXAMPLES / server, str(ROOT / "examples" / "assignments" / assignment))
    failed, _ = by_status(result)
    assert failed == set(), "\n".join(f"{c.id}: {c.observed}" for c in result.checks)
    assert result.facts["check"]["port"] in (7000, 7001)
    if server == "kv.py":  # no rule for any text: only what the examples can show
        assert "split-character" not in {c.id for c in result.checks}


def test_watch_checks_again_on_each_save_and_ctrl_c_leaves_the_lab_as_it_was(
    net: socklab.Lab, lab: Engine, tmp_path: Path
) -> None:
    server = tmp_path / "mine.py"
    server.write_text((EXAMPLES / "seed_udp.py").read_text())
    proc = start_lab_cli(
        "-p", PROJECT, "check", str(server), "--as", "udp-shout", "--watch",
        "--results", str(tmp_path / "results"), cwd=tmp_path,
    )  # fmt: skip
    try:
        wait_for(lambda: len(list(tmp_path.glob("results/*.json"))) == 1, "the first check", 120)
        server.write_text((EXAMPLES / "udp_shout.py").read_text())  # saved: fixed
        wait_for(lambda: len(list(tmp_path.glob("results/*.json"))) == 2, "a second check", 120)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    verdicts = [
        json.loads(p.read_text())["passed"] for p in sorted(tmp_path.glob("results/*.json"))
    ]
    assert verdicts == [False, True]
    settled(lab)
    assert helpers_left(lab) == []
