"""`check`'s pure parts: assignments read from YAML, and every property's judgement fed
observations where it must hold, must fail, and cannot be judged."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from lab.check import ROLES
from lab.check.battery import Battery
from lab.check.evidence import FAILED, HELD, NOT_JUDGED, asked
from lab.check.judge import _incomplete_utf8, judge
from lab.check.spec import load
from lab.errors import UsageError
from lab.experiments.model import Observations, passed
from lab.services.probes.sockscript import Event
from lab.traffic.script import Events

HELLO = [{"send": "hello, lab", "reply": "HELLO, LAB"}]


def ev(sock: str, op: str, outcome: str = "ok", data: str | None = None, remote: str = "") -> Event:
    nbytes = None if data is None else len(data.encode("utf-8", "surrogateescape"))
    return Event(0.0, "shouthost", sock, "tcp", op, "", remote, outcome, nbytes, data)


def talk(sock: str, sent: str, got: str, outcome: str = "ok") -> list[Event]:
    return [
        ev(sock, "socket"),
        ev(sock, "connect"),
        ev(sock, "send", data=sent),
        ev(sock, "recv_until", outcome, got),
    ]


def seen(
    events: list[Event],
    expect: dict[str, Any],
    server: dict[str, Any] | None = None,
    check: dict[str, Any] | None = None,
) -> Observations:
    facts = {"expect": expect, "server": server or {}, "check": check or {}}
    return Observations(Events(events), facts, {})


def verdict(pid: str, obs: Observations, stream: bool = True) -> str:
    return judge(obs, stream, [pid, "sequential"] if stream else [pid])[pid].status


SEQUENTIAL_OK = [e for n in range(3) for e in talk(f"sequential.{n}", "hello, lab", "HELLO, LAB")]
SEQ_EXPECT = {"sequential": {"exchanges": HELLO, "clients": 3}}
SEQUENTIAL_BAD = [
    *talk("sequential.0", "hello, lab", "HELLO, LAB"),
    ev("sequential.1", "socket"),
    ev("sequential.1", "connect", "ECONNREFUSED"),
]


@pytest.mark.parametrize(
    ("got", "extra", "status"),
    [
        (["HI", " THERE"], None, HELD),
        (["HI", " THERE"], "\n", FAILED),  # bytes no request asked for
        (["", ""], None, FAILED),  # waited for more than the protocol says
        (["HI", " there"], None, FAILED),
    ],
)
def test_answers(got: list[str], extra: str | None, status: str) -> None:
    events = [ev("answers.a", "socket"), ev("answers.a", "connect")]
    for sent, reply in zip(["hi", " there"], got, strict=True):
        events += [
            ev("answers.a", "send", data=sent),
            ev("answers.a", "recv_until", "ok" if reply else "timeout", reply),
        ]
    events.append(ev("answers.a", "recv", "ok" if extra else "timeout", extra))
    expect = {
        "answers": {
            "exchanges": [{"send": "hi", "reply": "HI"}, {"send": " there", "reply": " THERE"}]
        }
    }
    assert verdict("answers", seen(events, expect)) == status


SPLIT = {"split-character": {"exchanges": [{"send": "5€ x", "reply": "5€ X"}]}}


@pytest.mark.parametrize(
    ("replies", "calls", "status"),
    [
        (
            ["5\udce2\udc82", "\udcac X"],
            [{"name": "recvfrom", "result": 3, "data": "5\udce2\udc82"}],
            HELD,
        ),
        (["5€ X"], [{"name": "recvfrom", "result": 6, "data": "5€ x"}], NOT_JUDGED),  # one read
        (["5\udce2\udc82", "\udcac X"], None, NOT_JUDGED),  # not traced
        (["5\ufffd"], [{"name": "recvfrom", "result": 3, "data": "5\udce2\udc82"}], FAILED),
    ],
)
def test_split_character(replies: list[str], calls: Any, status: str) -> None:
    events = [ev("split-character.a", "send", data="5\udce2\udc82")]
    events += [ev("split-character.a", "recv_until", data=r) for r in replies]
    server = {"split-character": {"calls": calls}} if calls is not None else {}
    assert verdict("split-character", seen(events, SPLIT, server)) == status


def digest_events(probe: str, got: bytes) -> list[Event]:
    return [
        ev(f"{probe}.a", "connect"),
        Event(
            0,
            "h",
            f"{probe}.a",
            "tcp",
            "recv",
            "",
            "",
            "ok",
            len(got),
            None,
            f"sha256 {hashlib.sha256(got).hexdigest()}",
        ),
        ev(f"{probe}.a", "sendall", data=""),
    ]


RIGHT = b"X" * 100
DIGEST = {"nbytes": 100, "sha256": hashlib.sha256(RIGHT).hexdigest(), "sent": 100}


@pytest.mark.parametrize(
    ("got", "calls", "slow", "partial"),
    [
        (RIGHT, [{"name": "sendto", "result": 100, "asked": 100}], HELD, NOT_JUDGED),
        (
            RIGHT,
            [
                {"name": "sendto", "result": 40, "asked": 100},
                {"name": "sendto", "result": 60, "asked": 60},
            ],
            HELD,
            HELD,
        ),
        (RIGHT[:40], [{"name": "sendto", "result": 40, "asked": 100}], FAILED, FAILED),
        (b"Y" * 100, [], FAILED, NOT_JUDGED),  # reordered or wrong: same count, other bytes
        (RIGHT, None, HELD, NOT_JUDGED),
    ],
)
def test_slow_reader_and_partial_send(got: bytes, calls: Any, slow: str, partial: str) -> None:
    expect = {"slow-reader": DIGEST, "large": DIGEST}
    events = digest_events("slow-reader", got) + digest_events("large", RIGHT)
    server = {"slow-reader": {"calls": calls}} if calls is not None else {}
    obs = seen(events, expect, server)
    verdicts = judge(obs, True, ["large", "slow-reader", "partial-send"])
    assert (verdicts["slow-reader"].status, verdicts["partial-send"].status) == (slow, partial)


def test_a_failure_a_bigger_one_explains_is_not_judged() -> None:
    expect = {"slow-reader": DIGEST, "large": DIGEST}
    events = digest_events("slow-reader", b"") + digest_events("large", b"")
    verdicts = judge(seen(events, expect), True, ["large", "slow-reader"])
    assert verdicts["large"].status == FAILED
    assert verdicts["slow-reader"].status == NOT_JUDGED


def test_sequential_and_what_it_hides() -> None:
    assert verdict("sequential", seen(SEQUENTIAL_OK, SEQ_EXPECT)) == HELD
    assert verdict("sequential", seen(SEQUENTIAL_BAD, SEQ_EXPECT)) == FAILED
    concurrent = talk("concurrent.a", "hello, lab", "HELLO, LAB") + talk(
        "concurrent.b", "hello, lab", "", "timeout"
    )
    expect = {**SEQ_EXPECT, "concurrent": {"exchanges": HELLO}}
    assert verdict("concurrent", seen(concurrent + SEQUENTIAL_OK, expect)) == FAILED
    assert verdict("concurrent", seen(concurrent + SEQUENTIAL_BAD, expect)) == NOT_JUDGED


@pytest.mark.parametrize(
    ("second", "sequential_events", "status"),
    [
        (("HELLO, LAB", "ok"), SEQUENTIAL_OK, HELD),
        (("", "ECONNREFUSED"), SEQUENTIAL_OK, FAILED),
        (("", "ECONNREFUSED"), SEQUENTIAL_BAD, NOT_JUDGED),
    ],
)
def test_reset(second: tuple[str, str], sequential_events: list[Event], status: str) -> None:
    events = (
        talk("reset.a", "hello, lab", "HELLO, LAB")
        + talk("reset.b", "hello, lab", second[0], second[1])
        + sequential_events
    )
    expect = {**SEQ_EXPECT, "reset": {"exchanges": HELLO}}
    server = {"reset": {"calls": [{"name": "recvfrom", "result": -1, "errno": "ECONNRESET"}]}}
    assert verdict("reset", seen(events, expect, server)) == status


def half_close(last: str, server: dict[str, Any]) -> str:
    events = []
    for n in range(2):
        events += [
            ev(f"half-close.{n}", "send", data="hello, lab"),
            ev(f"half-close.{n}", "recv_all", "ok", "HELLO, LAB"),
            ev(f"half-close.{n}", "recv_all", last, "" if last == "eof" else None),
        ]
    expect = {**SEQ_EXPECT, "half-close": {"exchanges": HELLO, "clients": 2}}
    return verdict("half-close", seen(events + SEQUENTIAL_OK, expect, {"half-close": server}))


def test_half_close() -> None:
    fine = {"sockets_before": 1, "sockets_after": 1, "close_wait": []}
    assert half_close("eof", fine) == HELD
    assert half_close("timeout", fine) == FAILED  # answered, never closed
    assert half_close("eof", {**fine, "close_wait": ["a <- b"]}) == FAILED
    assert half_close("eof", {**fine, "sockets_after": 3}) == FAILED  # descriptors kept
    assert half_close("eof", {"close_wait": []}) == NOT_JUDGED  # sockets never read


def test_reachable_names_the_bind_address() -> None:
    expect = {"reachable": {"exchanges": HELLO, "target": "10.0.0.20"}}
    refused = [ev("reachable.a", "socket"), ev("reachable.a", "connect", "ECONNREFUSED")]
    obs = seen(refused, expect, check={"address": "127.0.0.1"})
    verdicts = judge(obs, True, ["reachable"])
    assert verdicts["reachable"].status == FAILED
    assert "only its own host" in verdicts["reachable"].observed
    ok = talk("reachable.a", "hello, lab", "HELLO, LAB")
    assert verdict("reachable", seen(ok, expect, check={"address": "0.0.0.0"})) == HELD


@pytest.mark.parametrize(
    ("server", "answer", "status"),
    [
        ({"killed": True, "listened": False, "last_line": "OSError: [Errno 98]"}, "", FAILED),
        ({"killed": True, "listened": True}, "HELLO, LAB", HELD),
        ({"killed": True, "listened": True}, "", FAILED),
        ({}, "", NOT_JUDGED),
    ],
)
def test_restart(server: dict[str, Any], answer: str, status: str) -> None:
    events = talk("restart.a", "hello, lab", "HELLO, LAB")  # answered before the kill
    events += talk("restart.b", "hello, lab", answer, "ok" if answer else "ECONNREFUSED")
    expect = {"restart": {"exchanges": HELLO}}
    assert verdict("restart", seen(events, expect, {"restart": server})) == status


def test_not_text() -> None:
    expect = {**SEQ_EXPECT, "not-text": {"exchanges": HELLO}}
    died = [ev("not-text.a", "send", data="\udcff"), ev("not-text.a", "recv", "eof", "")]
    server = {"not-text": {"alive": False, "ending": "exited with 1"}}
    assert verdict("not-text", seen(died + SEQUENTIAL_OK, expect, server)) == FAILED
    lived = [ev("not-text.a", "send", data="\udcff"), ev("not-text.a", "recv", "timeout")]
    lived += talk("not-text.b", "hello, lab", "HELLO, LAB")
    assert verdict("not-text", seen(lived + SEQUENTIAL_OK, expect)) == HELD


def test_datagrams() -> None:
    whole = b"x" * 1472
    expect = {
        "large": {
            "datagrams": [
                {"sent": 1472, "nbytes": 1472, "sha256": hashlib.sha256(whole.upper()).hexdigest()}
            ]
        }
    }
    cut = [ev("large.0", "recvfrom", data="X" * 1000)]
    assert verdict("large", seen(cut, expect), stream=False) == FAILED
    right = [ev("large.0", "recvfrom", data="X" * 1472)]
    assert verdict("large", seen(right, expect), stream=False) == HELD
    two = [{"send": "a", "reply": "A"}, {"send": "b", "reply": "B"}]
    answers = [
        ev("sender-address.a", "recvfrom", data="A", remote="127.0.0.1:8080"),
        ev("sender-address.b", "recvfrom", data="B", remote="127.0.0.1:41000"),
    ]
    obs = seen(answers, {"sender-address": {"exchanges": two}}, check={"target": "127.0.0.1:8080"})
    assert verdict("sender-address", obs, stream=False) == FAILED  # from another port


def test_a_probe_with_no_server_is_not_judged_and_nothing_judged_never_passes() -> None:
    obs = seen([], {}, {"answers": {"unavailable": "the server could not be started again"}})
    assert verdict("answers", obs) == NOT_JUDGED
    assert not passed([{"id": "answers", "held": False, "judged": False}])
    assert passed([{"id": "a", "held": True}, {"id": "b", "held": False, "judged": False}])


@pytest.mark.parametrize(
    ("data", "cut"),
    [
        (b"abc", False),
        (b"5\xe2\x82", True),
        (b"5\xe2\x82\xac", False),
        (b"\xc3", True),
        (b"\xf0\x9f\x98", True),
        (b"\xf0\x9f\x98\x80", False),
        (b"", False),
    ],
)
def test_a_read_that_ends_inside_a_character(data: bytes, cut: bool) -> None:
    assert _incomplete_utf8(data) is cut


def test_the_length_a_send_asked_for() -> None:
    assert asked('7, "HELLO"..., 65536, 0, NULL, 0') == 65536
    assert asked('7, "say \\"hi\\"", 9, MSG_NOSIGNAL, NULL, 0') == 9
    assert asked("7, NULL, 0") is None


def test_the_battery_for_each_role_covers_each_property() -> None:
    for role in ROLES.values():
        battery = Battery(role, "127.0.0.1", role.port)
        for prop in role.applicable():
            if prop.id in ("reachable", "restart", "partial-send"):
                continue
            plan = battery.stream(prop.id) if role.stream else battery.datagram(prop.id)
            assert plan.steps
            assert all(
                s.get("sock", prop.id).startswith(prop.id) or s["op"] == "pause" for s in plan.steps
            )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("protocol: sctp\nport: 1\n", "protocol: is tcp or udp"),
        ("protocol: tcp\nport: 0\n", "port: is a number"),
        ("protocol: tcp\nport: 7\nexamples: []\n", "examples: give at least one"),
        ("protocol: tcp\nport: 7\nexamples: [{send: a}]\n", "examples[0]: needs send: and reply:"),
        (
            "protocol: tcp\nport: 7\nexamples: [{send: a, reply: a}]\nproperties: [sender-address]\n",
            "'sender-address' is not a tcp property",
        ),
        ("protocol: tcp\nport: 7\nflavour: x\n", "unknown field 'flavour'"),
        ("[1, 2\n", "not YAML"),
    ],
)
def test_an_assignment_file_that_is_wrong_says_where(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=None) as caught:
        load(path)
    assert error in caught.value.what


def test_the_example_assignment_reads_and_without_a_rule_skips_what_needs_one() -> None:
    root = Path(__file__).resolve().parents[2]
    echo = load(root / "examples" / "assignments" / "echo.yaml")
    assert (echo.protocol, echo.port, echo.answer("héllo")) == ("tcp", 7000, "héllo")
    kv = load(root / "examples" / "assignments" / "kv.yaml")
    assert kv.answer("x") is None
    ids = {p.id for p in kv.applicable()}
    assert "split-character" not in ids
    assert "sequential" in ids


FIXTURE = Path(__file__).parent / "fixtures" / "check-tcp-reset.json"


def test_a_saved_check_is_judged_again_the_same_and_an_edit_is_caught() -> None:
    import json

    from lab.check.runner import rejudge
    from lab.grading.collect import problem

    data = json.loads(FIXTURE.read_text())
    assert problem(data) is None
    assert [c.held for c in rejudge(data)] == [c["held"] for c in data["checks"]]
    forged = json.loads(FIXTURE.read_text())
    reset = next(c for c in forged["checks"] if c["id"] == "reset")
    reset["held"] = True
    forged["passed"] = all(c["held"] for c in forged["checks"] if c.get("judged", True))
    assert problem(forged) == "edited: its observations do not give its checks (reset)"


def test_grade_reads_check_results_per_student_and_property(tmp_path: Path) -> None:
    import json

    from lab.grading import checks, collect

    data = json.loads(FIXTURE.read_text())
    data["facts"]["check"]["by"] = "ada"
    (tmp_path / "a.json").write_text(json.dumps(data))
    collected = collect.collect([tmp_path])
    assert collected.skipped == []
    assert [r.student for r in collected.checks] == ["ada"]
    rows = checks.checks_csv(collected.checks).splitlines()
    assert rows[0] == "student,role,file,property,verdict,checked_at"
    assert any(r.startswith("ada,tcp-shout,tcp_reset.py,reset,failed,") for r in rows)
    assert any(",partial-send,not judged," in r for r in rows)


def test_a_property_probed_without_sequential_can_still_fail() -> None:
    events = [
        *talk("reset.a", "hello, lab", "HELLO, LAB"),
        *talk("reset.b", "hello, lab", "", "ECONNREFUSED"),
    ]
    obs = seen(events, {"reset": {"exchanges": HELLO}})
    assert judge(obs, True, ["reset"])["reset"].status == FAILED


def test_restart_needs_the_client_answered_before_the_kill() -> None:
    expect = {"restart": {"exchanges": HELLO}}
    server = {"restart": {"killed": True, "listened": True}}
    unanswered = talk("restart.a", "hello, lab", "", "timeout")
    unanswered += talk("restart.b", "hello, lab", "HELLO, LAB")
    assert verdict("restart", seen(unanswered, expect, server)) == NOT_JUDGED


def test_a_failure_turned_not_judged_by_hand_is_caught() -> None:
    import json

    from lab.grading.collect import problem

    forged = json.loads(FIXTURE.read_text())
    reset = next(c for c in forged["checks"] if c["id"] == "reset")
    reset["judged"] = False
    forged["passed"] = passed(forged["checks"])
    assert forged["passed"]
    assert problem(forged) == "edited: its observations do not give its checks (reset)"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("protocol: tcp\nport: 7\nreply: upper\nframing: line\n", "framing: line goes with"),
        ("protocol: tcp\nport: 7\nexamples: 5\n", "examples: is a list"),
        (
            "protocol: tcp\nport: 7\nexamples: [{send: a, reply: a}]\nproperties: 5\n",
            "properties: is a list",
        ),
    ],
)
def test_more_wrong_assignment_files(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load(path)
    assert error in caught.value.what


def test_an_assignment_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        load(path)


def test_only_time_waits_on_the_servers_own_port_are_counted() -> None:
    from lab.check.server import time_waits
    from lab.services.probes.porttable import HostSocket

    def row(state: str, local: str, protocol: str = "tcp") -> HostSocket:
        return HostSocket(
            protocol, state, local, "10.203.0.100:40220", 0, 0, "", 0, None, None, "", ""
        )

    rows = [
        row("TIME_WAIT", "10.203.0.20:8080"),
        row("TIME_WAIT", "[::ffff:10.203.0.20]:8080", "tcp6"),
        row("TIME_WAIT", "127.0.0.1:38080"),  # a client's end, another port
        row("TIME_WAIT", "10.203.0.20:9090"),
        row("LISTEN", "0.0.0.0:8080"),
        row("ESTAB", "10.203.0.20:8080"),
        row("UNCONN", "0.0.0.0:8080", "udp"),
    ]
    assert time_waits(rows, 8080) == 2
    assert time_waits(rows, 9090) == 1
    assert time_waits(rows[4:], 8080) == 0
