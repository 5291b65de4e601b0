"""Impaired links: loss, rate, delay, jitter, reorder, duplicate, corrupt.

Loss is an iptables statistic match, rate a tc token bucket, the rest tc-netem, or
the lab's own netem in user space (services/helpers/netem.py) where the kernel has none.
Every change is made by a helper container holding CAP_NET_ADMIN in the host's
network namespace; the lab's services stay unprivileged. The parsing and the
commands are pure (tested without Docker); ``apply``/``reset``/``impaired``
carry them out. Impairments vanish with the namespace: a restarted host is clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lab import journal
from lab.backends.engine import Engine
from lab.chaos.impairment import (
    NO_NETEM,
    USER_SPACE,
    Impairment,
    apply_script,
    reset_script,
    show_script,
    user_space_argv,
)
from lab.engine import helpers
from lab.errors import HelperFailed, LinkError, NetemMissing, UsageError
from lab.interrupts import ctrl_c_ignored


def _run(backend: Engine, host: str, script: str) -> str:
    if host not in backend.topology.hosts:
        raise UsageError(f"{host} is not a host; one of: {', '.join(backend.topology.hosts)}")
    try:
        return helpers.run(
            backend,
            "link",
            helpers.Namespace.of_host(backend, host),
            ["sh", "-c", script],
            "NET_ADMIN",
        )
    except HelperFailed as exc:
        if NO_NETEM in exc.output:
            raise NetemMissing from None
        raise LinkError(f"changing {host}'s link failed: {exc.what}") from None


def apply(backend: Engine, host: str, imp: Impairment) -> str:
    """Put ``imp`` on ``host``'s link, replacing what was there; which netem is at work."""
    how = _apply(backend, host, imp)
    journal.publish(backend.topology.project, "link", host=host, impairment=imp.text(), how=how)
    return how


def _apply(backend: Engine, host: str, imp: Impairment) -> str:
    _stop_user_space(backend, host)
    try:
        _run(backend, host, apply_script(imp))
        return "tc netem" if imp.needs_netem else ""
    except NetemMissing:
        pass  # set -e stopped at tc netem; the next script starts from a clean link
    where = helpers.Namespace.of_host(backend, host)
    helper = helpers.start(
        backend, "netem", where, user_space_argv(imp), "NET_ADMIN", also=("NET_RAW",), lasting=True
    )
    try:
        helpers.wait_ready(helper, "delaying packets")
        _run(backend, host, apply_script(imp, kernel_netem=False))
    except HelperFailed as exc:
        reset(backend, host)
        raise LinkError(f"the user-space netem on {host} did not start: {exc.what}") from None
    except BaseException:
        reset(backend, host)
        raise
    return USER_SPACE


def _stop_user_space(backend: Engine, host: str) -> None:
    for helper in helpers.find(backend, "netem", host):
        helper.remove()


def reset(backend: Engine, host: str) -> None:
    _stop_user_space(backend, host)
    _run(backend, host, reset_script())
    journal.publish(backend.topology.project, "link", host=host, impairment="none")


def show(backend: Engine, host: str) -> str:
    running = helpers.find(backend, "netem", host)
    shown = _run(backend, host, show_script())
    if running:
        shown += f"user-space netem running: {' '.join(running[0].command())}\n"
    return shown


@contextmanager
def impaired(backend: Engine, host: str, imp: Impairment) -> Iterator[str]:
    """``imp`` on ``host``'s link for the length of a block; removed however it ends.

    Yields which netem is at work (see ``apply``)."""
    try:
        yield apply(backend, host, imp)
    finally:
        with ctrl_c_ignored():
            reset(backend, host)
