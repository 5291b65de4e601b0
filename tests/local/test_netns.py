"""lab/engine/netns.py: work done in a thread that joined a process's network namespace."""

from __future__ import annotations

import os
import socket

import pytest

from lab.engine import netns
from lab.errors import LabError

pytestmark = pytest.mark.local


def test_work_runs_and_its_result_comes_back() -> None:
    # Our own namespace: what a socket bound there sees is what this thread sees.
    def bound_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    assert netns.run_in(os.getpid(), bound_port) > 0


def test_an_error_in_the_work_is_raised_in_the_caller() -> None:
    def fails() -> None:
        raise ConnectionRefusedError("nobody there")

    with pytest.raises(ConnectionRefusedError, match="nobody there"):
        netns.run_in(os.getpid(), fails)


def test_a_process_that_is_gone_is_one_clear_error() -> None:
    with pytest.raises(LabError, match="no network namespace of process 999999999"):
        netns.run_in(999_999_999, lambda: None)
