"""The failure matrix against the real stack: the seed's two observations, chaos by hand,
and no fault left behind when a run is interrupted. (Every cell, three runs in a row, is
asserted in test_experiments.py.)"""

from __future__ import annotations

import json
import signal
import subprocess

import lab as socklab
from lab.backends.engine import Engine
from lab.chaos.faults import restore
from lab.experiments.builtin.failures import DEFAULT_ROWS, Failures, Row
from lab.experiments.model import Context, Observations, judge_checks
from lab.progress import silent
from lab.traffic.script import Events
from tests.docker.conftest import PROJECT, run_lab_cli, settled, start_lab_cli, wait_for


def rows(*names: str) -> tuple[Row, ...]:
    return tuple(r for r in DEFAULT_ROWS if r.name in names)


def test_the_seed_note_reproduced(net: socklab.Lab) -> None:
    experiment = Failures(rows("process-crash", "restart"))
    ctx = Context(net)
    experiment.run(ctx)
    cells = {(c["row"], c["client"]): c for c in ctx.facts["cells"]}

    # "BrokenPipeError when writing to a dead TCP server": EOF, then EPIPE on a later send.
    tcp = cells[("process-crash", "tcp-shout")]
    outcomes = [
        (e["op"], e["outcome"])
        for e in tcp["events"]
        if tcp["fault_at"] <= e["t"] <= tcp["recovered_at"]
    ]
    assert ("recv", "eof") in outcomes
    assert ("send", "EPIPE") in outcomes
    assert outcomes.index(("recv", "eof")) < outcomes.index(("send", "EPIPE"))

    # "can terminate the server and restart and still receive. cant for tcp"
    udp, tcp_restart = cells[("restart", "udp-shout")], cells[("restart", "tcp-shout")]
    assert udp["during"] == "answered"
    assert udp["old_socket_works"]
    assert tcp_restart["during"] == "eof-then-epipe"
    assert not tcp_restart["old_socket_works"]
    assert tcp_restart["new_socket_works"]


def test_a_scheduled_restart_is_judged_whatever_the_gap_and_the_kernel_counts_it(
    net: socklab.Lab,
) -> None:
    # The schedule the issue tried: udp-shout restarted with no ``at`` and no wait for
    # health, so the clients' datagrams may fall before the new process binds its port.
    experiment = Failures((Row("restart-udp", "", "restart", ("udp-shout",)),))
    ctx = Context(net)
    experiment.run(ctx)
    seen = Observations(Events([]), ctx.facts, {})
    claims = experiment.claims_for(net.topology)
    checks = judge_checks(experiment, claims, seen)
    assert {c.id for c in checks} == {"restart-udp.udp-shout", "restart-udp.udp-shout-connected"}
    assert all(c.held for c in checks), [(c.id, c.observed) for c in checks]
    assert ctx.facts["kernels"]["client"] == ctx.facts["kernels"]["driver"]
    # Every refusal the connected client met is an ICMP the struck host's kernel counted.
    (reading,) = ctx.facts["kernel"]
    counted = {k: reading["after"]["counters"][k] - reading["before"]["counters"][k]
               for k in ("OutDestUnreachs", "NoPorts")}  # fmt: skip
    cell = next(c for c in ctx.facts["cells"] if c["client"] == "udp-shout-connected")
    refused = sum(
        e["outcome"] == "ECONNREFUSED" and cell["fault_at"] <= e["t"] < cell["recovered_at"]
        for e in cell["events"]
    )
    assert counted["OutDestUnreachs"] >= refused
    assert counted["NoPorts"] >= counted["OutDestUnreachs"]


def test_chaos_by_hand_then_restore(lab: Engine) -> None:
    def chaos(*args: str) -> subprocess.CompletedProcess[str]:
        return run_lab_cli("-p", PROJECT, "chaos", *args, timeout=180)

    assert chaos("kill", "db").returncode == 0
    assert chaos("pause", "tcp-shout").returncode == 0
    assert chaos("cut", "shouthost").returncode == 0
    states = lab.states()
    assert (states["db"].status, states["tcp-shout"].status) == ("exited", "paused")
    assert lab.container("shouthost").id not in (lab.network().attrs.get("Containers") or {})
    refused = chaos("cut", "db")
    assert refused.returncode == 2
    assert "cut takes a host" in refused.stderr

    healed = chaos("restore")
    assert healed.returncode == 0, healed.stderr
    assert "heal shouthost" in healed.stdout
    settled(lab)
    lab.network().reload()
    assert lab.container("shouthost").id in (lab.network().attrs.get("Containers") or {})


def test_ctrl_c_during_the_matrix_leaves_no_fault(lab: Engine) -> None:
    proc = start_lab_cli("-p", PROJECT, "run", "failures", "--results", "/tmp/socklab-interrupted")
    try:
        # Interrupt while the first row's fault (killed processes) is in place.
        wait_for(
            lambda: any(s.status == "exited" for s in lab.states().values()),
            "the first fault",
            timeout=120,
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
        # What the interrupted run left, read before anything is mended...
        states = lab.states()
        answering = lab.answering()
        network = lab.network()
        attached = set(network.attrs.get("Containers") or {})
        hosts = {h: lab.container(h).id for h in lab.topology.hosts}
        restore(lab, silent)  # ...then, whatever happened, the next test gets a whole lab
    assert proc.returncode == 130, err
    assert {s.service: s.status for s in states.values()} == dict.fromkeys(states, "running")
    assert answering == set(lab.topology.services)
    assert all(container_id in attached for container_id in hosts.values())


def test_restore_mends_a_host_reconnected_by_hand_without_its_names(lab: Engine) -> None:
    # As a user testing failure modes by hand might: disconnect, then connect again on
    # the same IP but without the DNS aliases Compose gave it.
    host = lab.topology.hosts["shouthost"]
    network = lab.network()
    network.disconnect(lab.container("shouthost"))
    network.connect(lab.container("shouthost"), ipv4_address=host.ip)
    try:
        status = run_lab_cli("-p", PROJECT, "status", "--json")
        shown = {h["host"]: h for h in json.loads(status.stdout)}
        assert any("no DNS name" in d for d in shown["shouthost"]["differs"])
        unresolved = run_lab_cli("-p", PROJECT, "send", "udp", "hi", "--from", "client")
        assert "unresolved" in unresolved.stdout
        healed = run_lab_cli("-p", PROJECT, "chaos", "restore")
        assert healed.returncode == 0, healed.stderr
        assert "heal shouthost (no DNS name" in healed.stdout
    finally:
        restore(lab, silent)
    again = run_lab_cli("-p", PROJECT, "send", "udp", "back", "--from", "client")
    assert again.returncode == 0, again.stdout
    after = json.loads(run_lab_cli("-p", PROJECT, "status", "--json").stdout)
    assert all(h["differs"] == [] for h in after)
