"""socklab shell and socklab capture, run as a user runs them, against the test lab."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

import lab as socklab
from lab.backends.engine import Engine
from lab.engine import helpers
from tests.conftest import sigint_as_default
from tests.docker.conftest import ENV, PROJECT, ROOT, run_lab_cli, start_lab_cli, wait_for

TSHARK = shutil.which("tshark")


def test_shell_runs_one_command_as_the_labs_unprivileged_user(
    net: socklab.Lab,
) -> None:
    done = run_lab_cli(
        "-p",
        PROJECT,
        "shell",
        "client",
        "-c",
        "ss -tan; id -u; ip -br addr; echo oops >&2",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("State"), done.stdout  # ss's header
    assert "\n10001\n" in done.stdout
    assert net.client.ip in done.stdout  # the client's own namespace
    assert done.stderr == "oops\n"  # apart from standard output
    # The command's status is the command's; a process's name opens its host.
    failed = run_lab_cli("-p", PROJECT, "shell", "tcp-shout", "-c", "hostname; exit 3")
    assert failed.returncode == 3
    assert failed.stdout.strip() == "shouthost"


def test_shell_without_a_terminal_says_how_in_one_line(net: socklab.Lab) -> None:
    done = run_lab_cli("-p", PROJECT, "shell", "client", timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, lines
    assert "needs a terminal" in lines[0]
    assert "-c" in lines[0]


def test_shell_on_a_terminal_types_and_reads_and_leaves_nothing(net: socklab.Lab) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "-p", PROJECT, "shell", "shouthost"],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdin=follower,
        stdout=follower,
        stderr=follower,
        preexec_fn=sigint_as_default,
    )
    os.close(follower)
    seen = b""

    def read_until(word: bytes, timeout: float = 30) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while word not in seen:
            assert time.monotonic() < deadline, f"no {word!r} in {seen[-400:]!r}"
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:  # the process ended and the terminal closed
                    break

    shouthost = net.backend.container("shouthost")

    def running() -> bytes:
        argv = ["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]
        out = shouthost.exec_run(argv, user="10001").output
        assert isinstance(out, bytes)
        return out

    try:
        read_until(b"learner@shouthost")
        os.write(leader, b"sleep 777 & echo hi-$((6*7)) $(id -u)\r")
        read_until(b"hi-42 10001")
        assert b"sleep 777" in running()
        os.write(leader, b"exit\r")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    # Leaving the shell ended what it started.
    wait_for(lambda: b"sleep 777" not in running(), "the shell's sleep to end", 10)


def _live_capture_helpers(lab: Engine) -> list[str]:
    return [h.name for h in helpers.find(lab, "capture-live", "shouthost")] + [
        h.name for h in helpers.find(lab, "capture-live", "docker-host")
    ]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (scripts/setup)")
def test_a_capture_piped_into_tshark_decodes_the_frames_of_a_send(
    net: socklab.Lab, lab: Engine
) -> None:
    capture = start_lab_cli("-p", PROJECT, "capture", "shouthost", "-w", "-", cwd=ROOT)
    assert capture.stdout is not None
    assert capture.stderr is not None
    # tshark reads the pcap from the capture's own pipe.
    reader = subprocess.Popen(
        [
            str(TSHARK),
            "-r",
            "-",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.payload",
        ],
        stdin=capture.stdout.fileno(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    capture.stdout.close()
    try:
        line = capture.stderr.readline()
        assert "capturing on shouthost" in line, line
        sent = run_lab_cli("-p", PROJECT, "send", "tcp-shout", "journey", "--from", "client")
        assert sent.returncode == 0, sent.stderr
        capture.send_signal(signal.SIGINT)
        assert capture.wait(timeout=60) == 0, capture.stderr.read()
        out, err = reader.communicate(timeout=60)
    finally:
        for proc in (capture, reader):
            if proc.poll() is None:
                proc.kill()
    rows = [r.split("\t") for r in out.splitlines()]
    client, shouthost = net.client.ip, net.host("shouthost").ip
    assert [client, shouthost, "8080", b"journey".hex()] in rows, out[-2000:] + err
    assert reader.returncode == 0, err
    assert "frames" in capture.stderr.read()
    wait_for(lambda: not _live_capture_helpers(lab), "the capture helper to be removed", 30)


def test_a_capture_counts_frames_in_lines_and_names_what_it_cannot_capture(
    net: socklab.Lab,
) -> None:
    # shouthost's healthchecks talk to its own loopback every second: frames always come.
    done = run_lab_cli("-p", PROJECT, "capture", "shouthost", "-c", "3", timeout=60)
    assert done.returncode == 0, done.stderr
    numbers = [line.split()[0] for line in done.stdout.splitlines()]
    assert numbers == ["1", "2", "3"], done.stdout
    assert "3 frames" in done.stderr
    wrong = run_lab_cli("-p", PROJECT, "capture", "nowhere", timeout=60)
    assert wrong.returncode == 2
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "nothing to capture named 'nowhere'" in wrong.stderr
    assert "labnet" in wrong.stderr
