"""db-kill's evidence, read by pure functions that its judgements share with the tests.

Three questions a claim must answer before it can hold, each from what was recorded:

- ``across_kernels``: were the driver's kill times and the writer's acknowledgement
  times taken on one kernel's clock? (Otherwise no timed claim is judged.)
- ``off_write``: did each kill land while the writer was writing? A kill before its
  first acknowledgement, or one that broke none of its connections (it had finished,
  or was between connections), shows nothing about acknowledged writes.
- ``torn_tail``: what did the log's bytes past its intact prefix hold, read with the
  same sans-IO parser db replays with? Only an unfinished record is a torn one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from lab.services.protocols import aof


def across_kernels(kernels: Mapping[str, str] | None) -> str | None:
    """Why the driver's times and the hosts' cannot be compared, or None if every host ran
    on the driver's kernel (``Context.one_clock`` records them): on other kernels their
    monotonic clocks count from other boots."""
    if kernels is None:  # a result from before kernels were recorded: judged as then
        return None
    if "driver" not in kernels:
        return "the kernels the times were taken on were not recorded"
    apart = sorted(h for h, boot in kernels.items() if boot != kernels["driver"])
    if apart:
        return (
            f"{', '.join(apart)} ran on another kernel than the driver: their times and "
            "the driver's are not on one clock"
        )
    return None


def off_write(
    kills_at: Sequence[float],
    first_ack_at: float | None,
    last_ack_at: float | None,
    broken_at: Sequence[float],
) -> list[str]:
    """Each kill that did not land while the writer was writing, and why: it came before
    the writer's first acknowledgement, or no connection of the writer broke after it and
    before the next kill (the kill cut nothing the writer was using). Empty: all did."""
    if first_ack_at is None or last_ack_at is None:
        return ["the writer had no write acknowledged"]
    out = []
    ends = [*kills_at[1:], math.inf]
    for n, (at, end) in enumerate(zip(kills_at, ends, strict=True), 1):
        if at <= first_ack_at:
            out.append(f"kill {n} came {first_ack_at - at:.2f} s before the first acknowledgement")
        elif not any(at < b < end for b in broken_at):
            late = at - last_ack_at
            after = f", {late:.2f} s after the last acknowledgement" if late > 0 else ""
            out.append(f"kill {n} broke no connection of the writer{after}")
    return out


def torn_tail(tail: bytes) -> str | None:
    """None if ``tail`` is one record begun and not finished (what a death mid-write
    leaves); otherwise what it is. db's replay must find no whole record in it."""
    if not tail:
        return "nothing past the intact log"
    replayed = aof.replay(tail)
    if replayed.commands:
        return f"{len(replayed.commands)} whole record(s), which a replay applies"
    if not begun_record(tail):
        return "bytes that are no record at all (garbage, not a torn record)"
    return None


def begun_record(data: bytes) -> bool:
    """Whether ``data`` is the start of a record as ``aof.record`` writes it (a RESP array
    of bulk strings: ``*N``, then ``$L`` and L bytes each), cut off before its end. A
    resp parser only says "more data needed", which garbage without a CRLF says too."""
    pos = 0

    def header(kind: bytes) -> int:
        """The number after ``kind`` on the line at ``pos``; -1 if the data ends in it."""
        nonlocal pos
        if data[pos : pos + 1] != kind:
            raise ValueError(f"no {kind!r}")
        end = data.find(b"\r\n", pos)
        digits = data[pos + 1 : end if end >= 0 else len(data)].removesuffix(b"\r")
        if not digits.isdigit() and (end >= 0 or digits):
            raise ValueError("not a length")
        if end < 0:
            return -1
        pos = end + 2
        return int(digits)

    try:
        count = header(b"*")
        if count < 1:
            return count == -1  # cut in its first line; an empty array is no command
        for _ in range(count):
            if pos == len(data):
                return True
            length = header(b"$")
            if length == -1:
                return True
            rest = data[pos + length : pos + length + 2]
            if len(data) < pos + length + 2:
                return b"\r\n".startswith(rest)  # cut in the bytes or before their CRLF
            if rest != b"\r\n":
                return False
            pos += length + 2
    except ValueError:
        return False
    return False  # a whole record: not torn
