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


def _run(lab: Engine, host: str, script: str) -> str:
    if host not in lab.topology.hosts:
        raise UsageError(f"{host} is not a host; one of: {', '.join(lab.topology.hosts)}")
    try:
        return helpers.run(
            lab, "link", helpers.Namespace.of_host(lab, host), ["sh", "-c", script], "NET_ADMIN"
        )
    except HelperFailed as exc:
        if NO_NETEM in exc.output:
            raise NetemMissing from None
        raise LinkError(f"changing {host}'s link failed: {exc.what}") from None


def apply(lab: Engine, host: str, imp: Impairment) -> str:
    """Put ``imp`` on ``host``'s link, replacing what was there; which netem is at work."""
    how = _apply(lab, host, imp)
    journal.publish(lab.topology.project, "link", host=host, impairment=imp.text(), how=how)
    return how


def _apply(lab: Engine, host: str, imp: Impairment) -> str:
    _stop_user_space(lab, host)
    try:
        _run(lab, host, apply_script(imp))
        return "tc netem" if imp.needs_netem else ""
    except NetemMissing:
        pass  # set -e stopped at tc netem; the next script starts from a clean link
    where = helpers.Namespace.of_host(lab, host)
    helper = helpers.start(
        lab, "netem", where, user_space_argv(imp), "NET_ADMIN", also=("NET_RAW",), lasting=True
    )
    try:
        helpers.wait_ready(helper, "delaying packets")
        _run(lab, host, apply_script(imp, kernel_netem=False))
    except HelperFailed as exc:
        reset(lab, host)
        raise LinkError(f"the user-space netem on {host} did not start: {exc.what}") from None
    except BaseException:
        reset(lab, host)
        raise
    return USER_SPACE


def _stop_user_space(lab: Engine, host: str) -> None:
    for helper in helpers.find(lab, "netem", host):
        helper.remove()


def reset(lab: Engine, host: str) -> None:
    _stop_user_space(lab, host)
    _run(lab, host, reset_script())
    journal.publish(lab.topology.project, "link", host=host, impairment="none")


def show(lab: Engine, host: str) -> str:
    running = helpers.find(lab, "netem", host)
    shown = _run(lab, host, show_script())
    if running:
        shown += f"user-space netem running: {' '.join(running[0].command())}\n"
    return shown


@contextmanager
def impaired(lab: Engine, host: str, imp: Impairment) -> Iterator[str]:
    """``imp`` on ``host``'s link for the length of a block; removed however it ends.

    Yields which netem is at work (see ``apply``)."""
    try:
        yield apply(lab, host, imp)
    finally:
        with ctrl_c_ignored():
            reset(lab, host)
