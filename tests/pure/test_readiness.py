"""Which healthcheck the lab runs itself, and how (no Docker: the decisions only)."""

from __future__ import annotations

import pytest

from lab.engine.readiness import direct_check, probe_argv

OURS = ["CMD", "python3", "-m", "services.runtime.healthcheck"]


@pytest.mark.parametrize(
    ("test", "argv"),
    [
        (None, None),
        (["NONE"], None),
        (["CMD", "true"], None),  # the lab's hosts: running is enough
        (["CMD", "curl", "-f", "x"], ["timeout", "-s", "KILL", "3", "curl", "-f", "x"]),
        (["CMD-SHELL", "nc -z localhost 9"], ["timeout", "-s", "KILL", "3", "/bin/sh", "-c",
                                               "nc -z localhost 9"]),
    ],
)  # fmt: skip
def test_the_declared_test_becomes_a_bounded_command(
    test: list[str] | None, argv: list[str] | None
) -> None:
    assert probe_argv(test, 3) == argv


@pytest.mark.parametrize(
    ("test", "direct"),
    [
        ([*OURS, "http", "80"], ("http", 80)),
        ([*OURS, "udp-shout", "8080"], ("udp-shout", 8080)),
        ([*OURS, "listening", "9000/tcp"], None),  # reads the host's /proc: only inside
        ([*OURS, "gopher", "70"], None),
        (["CMD", "python3", "-m", "other.module", "http", "80"], None),
    ],
)
def test_only_the_labs_own_network_checks_run_from_outside(
    test: list[str], direct: tuple[str, int] | None
) -> None:
    argv = probe_argv(test, 3)
    assert argv is not None
    assert direct_check(argv[4:]) == direct
