"""One module per group of commands; each has ``register`` (its parsers) and handlers."""

from __future__ import annotations

from lab.cli.commands import (
    bench,
    capture,
    chaos,
    check,
    classroom,
    cluster,
    experiments,
    fuzz,
    grade,
    packets,
    send,
    shell,
    sockets,
    stack,
    web,
)

GROUPS = (
    stack,
    sockets,
    send,
    experiments,
    check,
    chaos,
    packets,
    capture,
    shell,
    web,
    fuzz,
    bench,
    grade,
    classroom,
    cluster,
)
