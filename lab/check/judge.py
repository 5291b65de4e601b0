"""Each property judged from what was recorded (pure: observations in, verdicts out).

The inputs are the client's socket events (their names start with the probe's), and
the facts the run recorded: what each probe expected, and the server's side as the
kernel showed it (its traced calls, its sockets, whether it still ran). A verdict is
held, failed, or not judged: the evidence to decide is missing, or another failure
hides this property (a server that serves one client cannot show what it does for
the next).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from lab.check.evidence import (
    FAILED,
    READS,
    SENDS,
    Judged,
    Seen,
    answered,
    failed,
    held,
    not_judged,
    short,
)
from lab.experiments.model import Observations
from lab.services.probes.sockscript import printable, raw
from lab.services.probes.sockscript import text as as_text


def exchange_property(probe: str, sock: str) -> Callable[[Seen], Judged]:
    def judge(seen: Seen) -> Judged:
        ok, text = answered(seen, sock, seen.expect[probe]["exchanges"])
        if ok:
            return held(text)
        ending = seen.ending(probe)
        return failed(text + (f"; the server {ending}" if ending else ""))

    return judge


def stream_answers(seen: Seen) -> Judged:
    ok, text = answered(seen, "answers.a", seen.expect["answers"]["exchanges"])
    ending = seen.ending("answers")
    if not ok:
        return failed(text + (f"; the server {ending}" if ending else ""))
    extra = [e for e in seen.of("answers.a") if e.op == "recv" and e.outcome == "ok" and e.data]
    if extra:
        return failed(
            f"{text}; then {short(extra[-1].data or '')} more, which no request asked for"
        )
    return held(text + ", each before the next request was sent")


def _incomplete_utf8(data: bytes) -> bool:
    """Whether ``data`` ends inside a multi-byte UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the lead byte of the last character
            need = (
                2
                if byte >> 5 == 0b110
                else 3
                if byte >> 4 == 0b1110
                else 4
                if byte >> 3 == 0b11110
                else 1
            )
            return need > back
    return False


def split_character(seen: Seen) -> Judged:
    want = seen.expect["split-character"]["exchanges"][0]
    sock = "split-character.a"
    problem = seen.failure_before_sending(sock)
    got = as_text(b"".join(raw(x.got) for x in seen.exchanges(sock)))  # both parts' answers
    ok = not problem and got == want["reply"]
    text = problem or f"sent {short(want['send'])} in two parts, got {short(got)}"
    if not ok and not problem:
        text += f", expected {short(want['reply'])}"
    calls = seen.calls("split-character")
    reads = [
        raw(c.get("data") or "")
        for c in calls or []
        if c["name"] in READS and (c.get("result") or 0) > 0
    ]
    cut = next((r for r in reads if _incomplete_utf8(r)), None)
    where = (
        f"its read returned {printable(cut.decode('utf-8', 'surrogateescape'))!r}" if cut else ""
    )
    if not ok:
        ending = seen.ending("split-character")
        return failed(
            "; ".join(
                part for part in (where, text, f"the server {ending}" if ending else "") if part
            )
        )
    if calls is None:
        return not_judged(f"{text}; but its reads were not traced, so the split was not seen")
    if cut is None:
        return not_judged(
            f"{text}; but the kernel gave both parts to one read, so no read ended mid-character"
        )
    return held(f"{where} (half a character), and the answer was whole: {text}")


def _digest_check(seen: Seen, probe: str) -> tuple[bool, str]:
    want = seen.expect[probe]
    sock = f"{probe}.a"
    problem = seen.failure_before_sending(sock)
    if problem:
        return False, problem
    reads = [e for e in seen.of(sock) if e.op == "recv"]
    writes = [e for e in seen.of(sock) if e.op == "sendall"]
    if not reads:
        return False, "nothing was read back"
    got = reads[-1]
    digest = got.note.removeprefix("sha256 ")
    sent = f"sent {want['sent']} bytes" + (
        f" ({writes[-1].outcome})" if writes and writes[-1].outcome != "ok" else ""
    )
    if got.nbytes == want["nbytes"] and digest == want["sha256"]:
        return True, f"{sent}; all {want['nbytes']} bytes of the answer came back, in order"
    if got.nbytes == want["nbytes"]:
        return (
            False,
            f"{sent}; {got.nbytes} bytes came back, but not the right ones (or out of order)",
        )
    end = "" if got.outcome == "ok" else f", then {got.outcome}"
    return (
        False,
        f"{sent}; {got.nbytes or 0} of {want['nbytes']} bytes of the answer came back{end}",
    )


def large(seen: Seen) -> Judged:
    ok, text = _digest_check(seen, "large")
    ending = seen.ending("large")
    return held(text) if ok else failed(text + (f"; the server {ending}" if ending else ""))


def _short_sends(calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    sends = [c for c in calls if c["name"] in SENDS and c.get("asked")]
    short_ones = [c for c in sends if c.get("result") is not None and 0 <= c["result"] < c["asked"]]
    return short_ones, len(sends)


def slow_reader(seen: Seen) -> Judged:
    ok, text = _digest_check(seen, "slow-reader")
    calls = seen.calls("slow-reader")
    partial, _ = _short_sends(calls or [])
    note = f"; the kernel took only part of {len(partial)} of its sends" if partial else ""
    if ok:
        return held(text + note)
    ending = seen.ending("slow-reader")
    return failed(text + note + (f"; the server {ending}" if ending else ""))


def partial_send(seen: Seen) -> Judged:
    calls = seen.calls("slow-reader")
    if calls is None:
        return not_judged("its sends to the slow reader were not traced")
    partial, count = _short_sends(calls)
    if not count:
        return not_judged("no send of the server was traced (it may write with write())")
    if not partial:
        return not_judged(
            f"the kernel took each of its {count} sends whole (a blocking socket waits until "
            "the whole buffer is queued), so whether it sends the rest of a partial send "
            "cannot be seen on this kernel"
        )
    first = partial[0]
    ok, text = _digest_check(seen, "slow-reader")
    taken = f"the kernel took {first['result']} of {first['asked']} bytes"
    if ok:
        return held(f"{taken} (and {len(partial) - 1} more partial sends); every byte arrived")
    return failed(f"{taken} in {len(partial)} sends; {text}: the rest was never sent")


def _one_client_only(seen: Seen) -> str:
    """Why a second client cannot be judged, when the server serves only one."""
    if "sequential" not in seen.expect:  # not probed: nothing hides the next client
        return ""
    verdict = sequential(seen)
    if verdict.status == FAILED:
        return "it serves one client only (see sequential), so what it does for the next "
    return ""


def sequential(seen: Seen) -> Judged:
    want = seen.expect["sequential"]["exchanges"]
    told = []
    for n in range(int(seen.expect["sequential"]["clients"])):
        ok, text = answered(seen, f"sequential.{n}", want)
        if not ok:
            ending = seen.ending("sequential")
            return failed(f"client {n + 1}: {text}" + (f"; the server {ending}" if ending else ""))
        told.append(f"client {n + 1} answered")
    return held(", ".join(told))


def concurrent(seen: Seen) -> Judged:
    want = seen.expect["concurrent"]["exchanges"]
    ok, text = answered(seen, "concurrent.a", want)
    if not ok:
        return not_judged(f"the first client was not answered: {text}")
    ok, text = answered(seen, "concurrent.b", want)
    if not ok:
        connected = any(e.op == "connect" and e.outcome == "ok" for e in seen.of("concurrent.b"))
        how = "the kernel completed its handshake, but " if connected else ""
        return failed(f"second client, while the first was connected: {how}{text}")
    exchanges = seen.exchanges("concurrent.a")
    if len(exchanges) < 2 or exchanges[1].got != want[0]["reply"]:
        return failed("the first client's next request went unanswered after the second came")
    return held(
        "the second client was answered while the first stayed connected; then the first again"
    )


def _errors_seen(calls: list[dict[str, Any]] | None) -> str:
    errors = sorted({c["errno"] for c in calls or [] if c.get("errno") in ("ECONNRESET", "EPIPE")})
    return " and ".join(errors)


def reset(seen: Seen) -> Judged:
    want = seen.expect["reset"]["exchanges"]
    ok, text = answered(seen, "reset.a", want)
    if not ok:
        return not_judged(f"the first client was not answered, so it never reset: {text}")
    errors = _errors_seen(seen.calls("reset"))
    saw = f"its call failed with {errors}" if errors else "the client reset the connection"
    ok, text = answered(seen, "reset.b", want)
    if ok:
        return held(f"{saw}; the next client was answered")
    ending = seen.ending("reset")
    after = f"; the server {ending}" if ending else ""
    hidden = _one_client_only(seen)
    if hidden:
        return not_judged(f"{saw}{after}; {hidden}cannot be told apart")
    return failed(f"{saw}{after}; the next client: {text}")


def half_close(seen: Seen) -> Judged:
    want = seen.expect["half-close"]["exchanges"][0]
    first = seen.exchanges("half-close.0")
    problem = seen.failure_before_sending("half-close.0")
    if problem or not first:
        return failed(problem or "nothing was sent")
    x = first[0]
    if x.got != want["reply"]:
        ending = seen.ending("half-close")
        tail = f"; the server {ending}" if ending else ""
        return failed(
            f"after a half-close: expected {short(want['reply'])}, "
            f"got {short(x.got)} ({x.outcome}){tail}"
        )
    if x.outcome != "eof":
        return failed(
            f"it answered {short(x.got)} but never closed ({x.outcome}): "
            "the connection stays in CLOSE_WAIT"
        )
    facts = seen.server.get("half-close", {})
    waiting = facts.get("close_wait", [])
    if waiting:
        return failed(f"{len(waiting)} connections left in CLOSE_WAIT: {', '.join(waiting[:3])}")
    clients = int(seen.expect["half-close"]["clients"])
    served = sum(
        1
        for n in range(clients)
        if [(x.got, x.outcome) for x in seen.exchanges(f"half-close.{n}")]
        == [(want["reply"], "eof")]
        and not seen.failure_before_sending(f"half-close.{n}")
    )

    if served < clients:
        hidden = _one_client_only(seen)
        if hidden:
            return not_judged(
                f"it answered a half-close and closed; {hidden}over many connections was not seen"
            )
        return failed(
            f"only {served} of {clients} half-closed connections were answered and closed"
        )
    before, after = facts.get("sockets_before"), facts.get("sockets_after")
    if before is None or after is None:
        return not_judged(
            "its sockets were not read, so whether descriptors stay open is not known"
        )
    if after > before:
        return failed(
            f"it holds {after} sockets after {clients} closed connections, {before} before"
        )
    return held(
        f"each of {clients} half-closes answered, then closed (eof); nothing in CLOSE_WAIT; "
        f"{after} sockets after, {before} before"
    )


def reachable(seen: Seen) -> Judged:
    want = seen.expect["reachable"]
    ok, text = answered(seen, "reachable.a", want["exchanges"])
    bound = str(seen.facts.get("check", {}).get("address", ""))
    origin = next((e.host for e in seen.of("reachable.a")), "another host")
    if ok:
        return held(f"from {origin} to {want['target']}: {text} (its socket is bound to {bound})")
    why = f"; its socket is bound to {bound}" if bound else ""
    if bound.startswith("127."):
        why += ", which only its own host can reach"
    return failed(f"from {origin} to {want['target']}: {text}{why}")


def restart(seen: Seen) -> Judged:
    facts = seen.server.get("restart", {})
    if "killed" not in facts:
        return not_judged(facts.get("unavailable") or "the server was never killed")
    want = seen.expect["restart"]["exchanges"]
    before = seen.exchanges("restart.a")
    if not before or before[0].got != want[0]["reply"]:
        return not_judged("the client was not answered before the kill, so nothing was held")
    stream = seen.facts.get("check", {}).get("protocol", "tcp") == "tcp"
    killed = "killed with a client connected" if stream else "killed; the client kept its socket"
    left = facts.get("left", [])
    held_port = (
        f"its old connection was {left[0]} in the kernel" if left else "nothing held the port"
    )
    if not facts.get("listened"):
        last = facts.get("last_line") or facts.get("ending", "")
        return failed(f"{killed}; {held_port}; started again, it did not listen: {last}")
    after = seen.expect["restart"].get("after", want)
    if seen.of("restart.b"):
        ok, text = answered(seen, "restart.b", want)
    else:
        got = before
        ok = len(got) >= 2 and got[1].got == after[0]["reply"]
        text = (
            f"after the restart: {short(got[1].got)} ({got[1].outcome})"
            if len(got) >= 2
            else "no request after the restart"
        )
    if ok:
        return held(f"{killed}; {held_port}; started again at once, it answered")
    return failed(f"started again, it listened, but: {text}")


def not_text(seen: Seen) -> Judged:
    after_garbage = [e for e in seen.of("not-text.a") if e.op == "recv"]
    ended_it = bool(after_garbage) and after_garbage[0].outcome not in ("ok", "timeout")
    ending = seen.ending("not-text")
    if ended_it and ending:
        return failed(
            f"right after the bytes, the connection ended ({after_garbage[0].outcome}) "
            f"and the server {ending}"
        )
    sock = "not-text.b"
    want = seen.expect["not-text"]["exchanges"]
    ok, text = answered(seen, sock, want)
    if ok:
        return held("after bytes that are not UTF-8, the next client was answered")
    hidden = _one_client_only(seen)
    if hidden:
        return not_judged(f"{hidden}cannot be told apart")
    return failed(f"after bytes that are not UTF-8, the next client: {text}")


# --- datagrams ----------------------------------------------------------------------


def datagram_large(seen: Seen) -> Judged:
    wants = seen.expect["large"]["datagrams"]
    told = []
    for n, want in enumerate(wants):
        replies = [e for e in seen.of(f"large.{n}") if e.op == "recvfrom"]
        if not replies or replies[0].outcome != "ok":
            outcome = replies[0].outcome if replies else "not sent"
            return failed(f"a {want['sent']}-byte datagram: no answer ({outcome})")
        data = raw(replies[0].data or "")
        if len(data) != want["nbytes"] or hashlib.sha256(data).hexdigest() != want["sha256"]:
            return failed(
                f"a {want['sent']}-byte datagram was answered with {len(data)} bytes, "
                f"not the {want['nbytes']} it should"
            )
        told.append(str(want["sent"]))
    return held(f"datagrams of {', '.join(told)} bytes were each answered whole")


def sender_address(seen: Seen) -> Judged:
    want = seen.expect["sender-address"]["exchanges"]
    target = str(seen.facts.get("check", {}).get("target", ""))
    for sock, example in (("sender-address.a", want[0]), ("sender-address.b", want[1])):
        got = [e for e in seen.of(sock) if e.op == "recvfrom"]
        if not got or got[0].outcome != "ok":
            return failed(
                "a datagram was never answered at the port it came from "
                f"({got[0].outcome if got else 'nothing'})"
            )
        if raw(got[0].data or "") != example["reply"].encode():
            return failed(
                f"socket {sock[-1]} got {short(got[0].data or '')}, "
                "the answer to another socket's datagram"
            )
        if target and got[0].remote != target:
            return failed(
                f"the answer came from {got[0].remote}, not {target}, the address it was sent to"
            )
    return held(f"two sockets each got their own answer, from {target or 'the server'}")


def datagram_not_text(seen: Seen) -> Judged:
    ok, text = answered(seen, "not-text.b", seen.expect["not-text"]["exchanges"])
    if ok:
        return held(f"after a datagram that is not UTF-8, the next was answered: {text}")
    ending = seen.ending("not-text")
    return failed(
        f"after a datagram that is not UTF-8, the next: {text}"
        + (f"; the server {ending}" if ending else "")
    )


STREAM_JUDGES: dict[str, Callable[[Seen], Judged]] = {
    "answers": stream_answers,
    "non-ascii": exchange_property("non-ascii", "non-ascii.a"),
    "split-character": split_character,
    "large": large,
    "slow-reader": slow_reader,
    "partial-send": partial_send,
    "sequential": sequential,
    "concurrent": concurrent,
    "reset": reset,
    "half-close": half_close,
    "reachable": reachable,
    "restart": restart,
    "not-text": not_text,
}
DATAGRAM_JUDGES: dict[str, Callable[[Seen], Judged]] = {
    "answers": exchange_property("answers", "answers.a"),
    "large": datagram_large,
    "sender-address": sender_address,
    "non-ascii": exchange_property("non-ascii", "non-ascii.a"),
    "not-text": datagram_not_text,
    "reachable": reachable,
    "restart": restart,
}

PROBE_OF = {"partial-send": "slow-reader"}  # properties judged from another's probe
# A failure another property already shows hides these (a server that cannot answer a
# large message to a fast reader cannot to a slow one; one that serves a single client
# cannot serve two at once): they are then not judged.
HIDDEN_BY = {"slow-reader": "large", "concurrent": "sequential"}


def judge(seen: Observations, stream: bool, ids: list[str]) -> dict[str, Judged]:
    """Every property in ``ids`` judged; one whose probe found no server is not judged."""
    s = Seen(seen)
    judges = STREAM_JUDGES if stream else DATAGRAM_JUDGES
    verdicts = {}
    for pid in ids:
        missing = s.unavailable(PROBE_OF.get(pid, pid))
        if missing:
            verdicts[pid] = not_judged(missing)
            continue
        try:
            verdict = judges[pid](s)
            cover = HIDDEN_BY.get(pid) if stream else None
            if verdict.status == FAILED and cover in ids and _fails(judges, cover, s):
                verdict = not_judged(f"{verdict.observed}; but it fails {cover}, which hides this")
        except (LookupError, ValueError, TypeError) as exc:
            verdict = not_judged(f"its evidence was not recorded ({type(exc).__name__}: {exc})")
        verdicts[pid] = verdict
    return verdicts


def _fails(judges: Mapping[str, Callable[[Seen], Judged]], pid: str | None, s: Seen) -> bool:
    try:
        return pid is not None and judges[pid](s).status == FAILED
    except (LookupError, ValueError, TypeError):
        return False
