"""The web view's pure parts: who may drive the lab, pcap read as it streams, replays of
recorded results (no Docker, no browser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.web.guard import Guard
from lab.web.replay import replayable, timeline, topology_of

FIXTURES = Path(__file__).parent / "fixtures" / "results"


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8765", True),
        ("localhost:8765", True),
        ("LOCALHOST:8765", True),
        ("[::1]:8765", True),
        ("127.0.0.1:9999", False),  # another port: another server
        ("evil.example:8765", False),  # DNS rebinding: a foreign name on our address
        ("127.0.0.1", False),
        (None, False),
    ],
)
def test_only_requests_that_name_this_server_are_served(host: str | None, ok: bool) -> None:
    assert Guard(8765, token="t").host_ok(host) is ok


def test_origins_and_tokens() -> None:
    guard = Guard(8765, token="secret")
    assert guard.origin_ok(None)  # curl, scripts: no browser, no Origin
    assert guard.origin_ok("http://127.0.0.1:8765")
    assert not guard.origin_ok("http://evil.example:8765")
    assert not guard.origin_ok("https://127.0.0.1:8765")
    assert guard.token_ok("secret")
    assert not guard.token_ok("secreT")
    assert not guard.token_ok(None)
    assert Guard(8765).token != Guard(8765).token  # a new one every run


def test_binding_beyond_loopback_is_named_in_the_address_and_the_allowed_hosts() -> None:
    assert Guard(8765).loopback_only
    wide = Guard(8765, bind="10.1.2.3", token="t")
    assert not wide.loopback_only
    assert wide.address() == "http://10.1.2.3:8765/?token=t"
    assert wide.host_ok("10.1.2.3:8765")


def test_a_recorded_result_replays_without_docker() -> None:
    path = FIXTURES / "dispatch.json"
    data = json.loads(path.read_text())
    topo = topology_of(data)
    assert {h["name"] for h in topo["hosts"]} == {"apphost", "shouthost", "client"}
    owners = {
        (r["protocol"], r["port"]): r["service"]
        for r in next(h for h in topo["hosts"] if h["name"] == "apphost")["ports"]
        if r["pid"]
    }
    assert owners[("tcp", 80)] == "http"
    items = timeline(path, data)
    assert [i["t"] for i in items] == sorted(i["t"] for i in items)
    assert len([i for i in items if i["kind"] == "socket"]) == len(data["events"])
    whole = replayable(0, path)
    assert whole["experiment"] == "dispatch"
    assert whole["ladder"] == []  # no capture was saved beside it


def test_a_failure_matrix_replays_its_faults_on_the_time_line() -> None:
    path = FIXTURES / "failures.json"
    items = timeline(path, json.loads(path.read_text()))
    faults = [i["text"] for i in items if i["kind"] == "fault"]
    assert "process-crash begins" in faults
    assert "process-crash undone" in faults
