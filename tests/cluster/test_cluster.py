"""The lab across three machines: placement, health, every experiment with every claim
holding, the failure matrix with its machine rows, VXLAN seen by `lab packets` and by
tshark alike, and `lab down` leaving nothing on any machine. In file order: the last
test takes the lab down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import lab as socklab
from lab.backends.model import PROJECT_LABEL
from lab.backends.swarm.swarm import ANCHOR_LABEL, Swarm
from lab.engine import hardening
from lab.engine.helpers import ROLE, ROLE_LABEL
from tests.cluster.conftest import ENV, PROJECT, ROOT, lab_cli
from tests.conftest import sigint_as_default


@pytest.fixture(scope="session")
def tshark() -> str:
    """tshark's path; never skipped when absent: scripts/setup installs it. Session-scoped,
    so a machine without it fails before the capture is made."""
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is not installed: scripts/setup installs it (apt-get install tshark)")
    return path


def stack_of(net: socklab.Lab) -> Swarm:
    stack = net.backend
    assert isinstance(stack, Swarm)
    return stack


def test_three_hosts_on_three_machines_healthy_and_status_says_where(net: socklab.Lab) -> None:
    done = lab_cli("status", "--json")
    assert done.returncode == 0, done.stderr
    report = {row["host"]: row for row in json.loads(done.stdout)}
    where = {host: report[host]["machine"] for host in ("apphost", "shouthost", "client")}
    assert len(set(where.values())) == 3, where
    for row in report.values():
        assert row["state"]["status"] == "running"
        assert row["differs"] == []
    for state in net.states().values():
        assert state.ready, state
    # Each container really is on its machine's engine, and a process on its host's.
    stack = stack_of(net)
    for service, machine in stack.placement.items():
        engine = stack.engine(machine)
        assert engine.containers.get(str(stack.container(service).id)).name
    assert stack.placement["http"] == stack.placement["apphost"]
    text = lab_cli("status")
    assert f"on machine {where['shouthost']}" in text.stdout


def test_the_anchors_on_every_machine_are_hardened_as_companions(net: socklab.Lab) -> None:
    stack = stack_of(net)
    seen = 0
    for machine in stack.machines:
        anchors: dict[str, str | list[str] | bool] = {
            "label": f"{ANCHOR_LABEL}={stack.topology.project}"
        }
        for container in stack.engine(machine).containers.list(filters=anchors):
            attrs = container.attrs
            differences = hardening.COMPANION.differences(
                attrs["HostConfig"], attrs["Config"]["User"]
            )
            assert differences == [], f"{container.name} on {machine}: {differences}"
            seen += 1
    assert seen >= len(stack.topology.networks)  # one per network on each machine with hosts


def test_a_message_crosses_machines_by_name(net: socklab.Lab) -> None:
    sent = net.send("tcp", "across machines")
    assert sent.reply == "ACROSS MACHINES", sent
    udp = net.send("udp", "udp works tho")
    assert udp.reply == "UDP WORKS THO", udp


def test_every_experiment_holds_across_machines(net: socklab.Lab, tmp_path: Path) -> None:
    done = lab_cli("run", "--all", "--results", str(tmp_path), timeout=1500)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    results = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    names = {r["experiment"] for r in results}
    assert {"dispatch", "cross-host", "failures", "tcp-vs-udp", "db-kill"} <= names
    for result in results:
        failed = [c for c in result["checks"] if not c["held"]]
        assert failed == [], (result["experiment"], failed)
    matrix = next(r for r in results if r["experiment"] == "failures")
    ids = {c["id"] for c in matrix["checks"]}
    # The machine rows are in the matrix, judged cell by cell from what was observed.
    for row in ("machine-lost", "machines-link-cut"):
        assert {f"{row}.tcp-shout", f"{row}.udp-shout-connected", f"{row}.http"} <= ids
    print("\n" + "\n".join(f"{c['id']}: {c['observed']}" for c in matrix["checks"]
                           if c["id"].startswith("machine")))  # fmt: skip


@pytest.fixture(scope="module")
def vxlan_capture(net: socklab.Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("vxlan")
    done = lab_cli("run", "tcp-vs-udp", "--capture", "--results", str(folder), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    (pcap,) = folder.glob("*.pcap")
    return pcap


def ours(pcap: Path) -> list[dict[str, Any]]:
    done = lab_cli("packets", str(pcap), "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    frames: list[dict[str, Any]] = json.loads(done.stdout)
    return frames


def theirs(tshark: str, pcap: Path, fields: list[str]) -> list[dict[str, str]]:
    """tshark's fields, every occurrence joined by "|" (outer first, then the inner frame's)."""
    argv = [tshark, "-r", str(pcap), "-n", "-T", "fields", "-E", "separator=\t"]
    argv += ["-E", "occurrence=a", "-E", "aggregator=|"]
    argv += [x for f in ["frame.number", *fields] for x in ("-e", f)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    return [dict(zip(["frame.number", *fields], row, strict=True)) for row in rows]


def test_the_capture_between_machines_shows_vxlan_and_tshark_agrees(
    tshark: str, vxlan_capture: Path
) -> None:
    mine = ours(vxlan_capture)
    fields = ["frame.protocols", "udp.dstport", "vxlan.vni", "vxlan.flags", "ip.src", "ip.dst",
              "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "eth.src"]  # fmt: skip
    reference = theirs(tshark, vxlan_capture, fields)
    assert len(mine) == len(reference)
    # Both ways: every frame tshark decodes as VXLAN is VXLAN to the lab, and no other.
    # (frame.protocols, not vxlan.vni: tshark fills that in for VXLAN-GPE on UDP 4790 too.)
    lab_says = {f["number"] for f in mine if any(x["name"] == "VXLAN" for x in f["layers"])}
    tshark_says = {
        int(row["frame.number"])
        for row in reference
        if "vxlan" in row["frame.protocols"].split(":")
    }
    assert lab_says == tshark_says, {
        "VXLAN to the lab only": sorted(lab_says - tshark_says)[:20],
        "VXLAN to tshark only": sorted(tshark_says - lab_says)[:20],
    }
    tunnelled = 0
    for frame, row in zip(mine, reference, strict=True):
        if frame["number"] not in lab_says:
            continue
        names = [layer["name"] for layer in frame["layers"]]
        tunnelled += 1
        assert names[:5] == ["Ethernet", "IPv4", "UDP", "VXLAN", "Ethernet"], names
        outer_ip, inner_ip = [x["fields"] for x in frame["layers"] if x["name"] == "IPv4"][:2]
        vxlan = frame["layers"][3]["fields"]
        assert frame["layers"][2]["fields"]["dst_port"] == 4789
        assert row["vxlan.vni"] == str(vxlan["vni"]), (frame["number"], row)
        assert int(row["vxlan.flags"], 16) >> 8 == vxlan["flags"]  # tshark's is 16 bits
        # tshark lists every occurrence: outer first, then the inner frame's.
        assert row["ip.src"].split("|")[:2] == [outer_ip["src"], inner_ip["src"]]
        assert row["ip.dst"].split("|")[:2] == [outer_ip["dst"], inner_ip["dst"]]
        # Outer addresses are the machines' (the underlay); inner ones the lab's hosts'.
        assert outer_ip["src"].startswith("10.231.0.")
        assert inner_ip["src"].startswith("10.232.0.")
        tcp = [x["fields"] for x in frame["layers"] if x["name"] == "TCP"]
        if tcp:
            assert row["tcp.srcport"] == str(tcp[0]["src_port"])
            assert row["tcp.seq_raw"] == str(tcp[0]["seq"])
    assert tunnelled > 10


def test_a_machine_cut_off_by_hand_is_silent_and_rejoin_mends_it(net: socklab.Lab) -> None:
    # Held past the swarm's failure detection (about 5 s): only the lab's traffic is cut,
    # so the swarm still counts the machine in, and restore finds a whole overlay
    # (docs/scale-out.md says what cutting the engines' own traffic too did).
    stack = stack_of(net)
    shout_machine = stack.machine_of("shouthost")
    address = stack.faults.address_of(shout_machine)
    done = lab_cli("chaos", "isolate", "shouthost")
    assert done.returncode == 0, done.stderr
    try:
        lost = net.send("udp-shout", "anyone", origin="client")
        assert lost.reply == "", lost  # no answer, and no error either: the machine is lost
        assert lost.events.failure() in ("", "recvfrom: timeout", "recv: timeout"), lost
        # apphost's machine is not cut off from the client's: http still answers.
        assert "200" in net.send("http", "GET", "/").reply.splitlines()[0]
        time.sleep(8)
        for other in stack.machines:
            if other == shout_machine:
                continue
            for network in stack.topology.networks.values():
                info = stack.engine(other).api.inspect_network(network.docker_name, verbose=True)
                peers = {p.get("IP") for p in info.get("Peers") or []}
                assert address in peers, (other, network.name, peers)
        still = net.send("tcp-shout", "still lost", origin="client")
        assert still.reply == "", still
    finally:
        rejoined = lab_cli("chaos", "rejoin", "shouthost")
        restored = lab_cli("chaos", "restore")
    assert rejoined.returncode == 0, rejoined.stderr
    assert restored.returncode == 0, restored.stderr
    # rejoin took its rule away: restore, reading every machine's chain, found none left
    assert "nothing needed mending" in restored.stdout, restored.stdout
    assert net.send("tcp", "back").reply == "BACK"
    assert net.send("tcp-shout", "by name", origin="client").reply == "BY NAME"
    # and between the two server machines, the pair the client's path says nothing about
    assert net.send("tcp-shout", "from apphost", origin="apphost").reply == "FROM APPHOST"


def test_fuzz_across_machines_leaves_every_process_answering(net: socklab.Lab) -> None:
    done = lab_cli("fuzz", "--inputs", "30", timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


def test_down_leaves_nothing_on_any_machine(net: socklab.Lab) -> None:
    stack = stack_of(net)
    done = lab_cli("down")
    assert done.returncode == 0, done.stderr
    assert not stack.owned(), stack.owned()
    for engine in stack.clients():
        labels: dict[str, str | list[str] | bool] = {"label": f"{PROJECT_LABEL}={PROJECT}"}
        assert engine.containers.list(all=True, filters=labels) == []
        assert engine.volumes.list(filters=labels) == []
        helpers: dict[str, str | list[str] | bool] = {
            "label": [f"{PROJECT_LABEL}={PROJECT}", f"{ROLE_LABEL}={ROLE}"]
        }
        assert engine.containers.list(all=True, filters=helpers) == []
        anchors: dict[str, str | list[str] | bool] = {"label": f"{ANCHOR_LABEL}={PROJECT}"}
        assert engine.containers.list(all=True, filters=anchors) == []
    assert stack.manager().networks.list(filters={"label": f"{PROJECT_LABEL}={PROJECT}"}) == []


def test_ctrl_c_during_up_leaves_nothing_on_any_machine(net: socklab.Lab) -> None:
    stack = stack_of(net)
    assert not stack.owned()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "-p", PROJECT, "up"],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_default,
    )
    try:
        deadline = time.monotonic() + 120
        while not stack.owned().containers:  # Ctrl-C once the first machine has some
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "up started nothing within 120 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert not stack.owned(), stack.owned()
    for engine in stack.clients():
        anchors: dict[str, str | list[str] | bool] = {"label": f"{ANCHOR_LABEL}={PROJECT}"}
        assert engine.containers.list(all=True, filters=anchors) == []
