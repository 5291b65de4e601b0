"""What a check recorded, read for judging: each probe's exchanges, the server's side.

Pure: observations in, readings out. ``Judged`` is a verdict with three outcomes: held,
failed, or not judged (the evidence to decide is missing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.check.battery import TIMEOUT
from lab.experiments.model import Observations
from lab.services.probes.sockscript import Event, printable, raw, text

HELD, FAILED, NOT_JUDGED = "held", "failed", "not judged"
READS = ("recvfrom", "recvmsg")  # the reads strace is asked to show (strace.TRACED)
SENDS = ("sendto",)  # the sends whose length strace prints as one number


@dataclass(frozen=True)
class Judged:
    status: str  # HELD, FAILED or NOT_JUDGED
    observed: str

    @property
    def held(self) -> bool:
        return self.status == HELD

    @property
    def judged(self) -> bool:
        return self.status != NOT_JUDGED


def held(text: str) -> Judged:
    return Judged(HELD, text)


def failed(text: str) -> Judged:
    return Judged(FAILED, text)


def not_judged(text: str) -> Judged:
    return Judged(NOT_JUDGED, text)


@dataclass(frozen=True)
class Exchange:
    sent: str
    got: str  # every byte read back until the next request
    outcome: str  # the last read's: ok, eof, timeout, an errno name
    peer: str = ""  # where the answer came from (datagrams)


def short(text: str, limit: int = 40) -> str:
    shown = printable(text)
    return repr(shown if len(shown) <= limit else shown[:limit] + "...")


class Seen:
    """The observations, read probe by probe."""

    def __init__(self, seen: Observations) -> None:
        self.events = list(seen.events)
        self.facts = seen.facts
        self.expect: Mapping[str, Any] = seen.facts.get("expect", {})
        self.server: Mapping[str, Any] = seen.facts.get("server", {})

    def of(self, sock: str) -> list[Event]:
        return [e for e in self.events if e.sock == sock]

    def probe_events(self, probe: str) -> list[Event]:
        return [e for e in self.events if e.sock.startswith(probe + ".")]

    def exchanges(self, sock: str) -> list[Exchange]:
        """Each request sent on ``sock`` with what was read back before the next one (the
        reads' bytes joined before decoding: a character may be split between two reads)."""
        found: list[Exchange] = []
        sent: str | None = None
        got, outcome, peer = b"", "", ""
        for e in self.of(sock):
            if e.op in ("send", "sendall", "sendto"):
                if sent is not None:
                    found.append(Exchange(sent, text(got), outcome, peer))
                sent, got, outcome, peer = e.data or "", b"", "", ""
            elif e.op in ("recv", "recv_until", "recv_all", "recvfrom") and sent is not None:
                got += raw(e.data or "")
                outcome = e.outcome
                peer = e.remote if e.op == "recvfrom" else peer
        if sent is not None:
            found.append(Exchange(sent, text(got), outcome, peer))
        return found

    def failure_before_sending(self, sock: str) -> str:
        """The connect (or socket) that failed on ``sock``, as "connect: ECONNREFUSED"."""
        for e in self.of(sock):
            if e.op in ("socket", "connect") and e.outcome != "ok":
                return f"{e.op}: {e.outcome}"
        return ""

    def unavailable(self, probe: str) -> str:
        """Why the server was not there for this probe ("" when it was)."""
        return str(self.server.get(probe, {}).get("unavailable", ""))

    def ending(self, probe: str) -> str:
        """How the server had ended by the probe's end ("" while it ran), with its last line."""
        facts = self.server.get(probe, {})
        if facts.get("alive", True):
            return ""
        last = str(facts.get("last_line", ""))
        return str(facts.get("ending", "it ended")) + (f" ({last})" if last else "")

    def calls(self, probe: str) -> list[dict[str, Any]] | None:
        """The server's traced socket calls during the probe; None when it was not traced."""
        calls = self.server.get(probe, {}).get("calls")
        return None if calls is None else list(calls)


def answered(seen: Seen, sock: str, expected: list[Mapping[str, str]]) -> tuple[bool, str]:
    """Whether every request on ``sock`` got exactly its answer, and what was seen."""
    problem = seen.failure_before_sending(sock)
    if problem:
        return False, problem
    got = seen.exchanges(sock)
    told = []
    for i, want in enumerate(expected):
        if i >= len(got):
            return False, f"request {short(want['send'])} was never sent (an error came first)"
        x = got[i]
        if x.got != want["reply"]:
            why = {
                "timeout": f", then nothing for {TIMEOUT:g} s",
                "eof": ", then the server closed the connection",
            }.get(x.outcome, f", then {x.outcome}" if x.outcome not in ("ok", "") else "")
            return (
                False,
                f"sent {short(x.sent)}, expected {short(want['reply'])}, got {short(x.got)}{why}",
            )
        told.append(f"{short(x.sent)} -> {short(x.got)}")
    return True, "; ".join(told)


ASKED = re.compile(r'"(?:[^"\\]|\\.)*"(?:\.\.\.)?, (\d+)')


def asked(args: str) -> int | None:
    """How many bytes a send asked the kernel to take (strace's length argument)."""
    found = ASKED.search(args)
    return int(found.group(1)) if found else None
