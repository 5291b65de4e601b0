"""Captures of real experiments: tshark reads them, agrees with `lab packets` field by field,
every checksum from a lab host holds, a corrupted frame is caught, and nothing is left behind."""

from __future__ import annotations

import json
import shutil
import signal
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.backends.engine import Engine
from lab.backends.model import PROJECT_LABEL
from lab.engine.helpers import ROLE, ROLE_LABEL
from lab.services.probes.sockscript import Event, Step
from tests.docker.conftest import PROJECT, run_lab_cli, start_lab_cli, wait_for

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (make setup)")

# (our layer, our field) -> tshark field; first occurrence: an ICMP error's outer headers.
FIELDS = {
    ("Ethernet", "src"): "eth.src",
    ("Ethernet", "dst"): "eth.dst",
    ("Ethernet", "type"): "eth.type",
    ("IPv4", "src"): "ip.src",
    ("IPv4", "dst"): "ip.dst",
    ("IPv4", "ttl"): "ip.ttl",
    ("IPv4", "protocol"): "ip.proto",
    ("IPv4", "total_length"): "ip.len",
    ("IPv4", "id"): "ip.id",
    ("IPv4", "header_length"): "ip.hdr_len",
    ("IPv4", "checksum"): "ip.checksum",
    ("TCP", "src_port"): "tcp.srcport",
    ("TCP", "dst_port"): "tcp.dstport",
    ("TCP", "seq"): "tcp.seq_raw",
    ("TCP", "ack"): "tcp.ack_raw",
    ("TCP", "flags"): "tcp.flags",
    ("TCP", "window"): "tcp.window_size_value",
    ("TCP", "header_length"): "tcp.hdr_len",
    ("TCP", "checksum"): "tcp.checksum",
    ("UDP", "src_port"): "udp.srcport",
    ("UDP", "dst_port"): "udp.dstport",
    ("UDP", "length"): "udp.length",
    ("UDP", "checksum"): "udp.checksum",
    ("ICMP", "type"): "icmp.type",
    ("ICMP", "code"): "icmp.code",
    ("ICMP", "checksum"): "icmp.checksum",
    ("ARP", "op"): "arp.opcode",
    ("ARP", "sender_ip"): "arp.src.proto_ipv4",
    ("ARP", "target_ip"): "arp.dst.proto_ipv4",
}
STATUS = {"IPv4": "ip.checksum.status", "TCP": "tcp.checksum.status", "UDP": "udp.checksum.status"}
STATUS["ICMP"] = "icmp.checksum.status"
CHECK_ALL = ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]
CHECK_ALL += ["-o", "udp.check_checksum:TRUE"]


@pytest.fixture(scope="module")
def captured(lab: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One captured run of tcp-vs-udp and of the failure matrix: experiment -> pcap."""
    folder = tmp_path_factory.mktemp("captured")
    done = run_lab_cli(
        "-p", PROJECT, "run", "tcp-vs-udp", "failures", "--capture", "--results", str(folder),
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    pcaps = {p.name.split("-2")[0]: p for p in folder.glob("*.pcap")}
    assert set(pcaps) == {"tcp-vs-udp", "failures"}
    return pcaps


def ours(pcap: Path) -> list[dict[str, Any]]:
    done = run_lab_cli("packets", str(pcap), "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    frames: list[dict[str, Any]] = json.loads(done.stdout)
    return frames


def theirs(pcap: Path, fields: list[str], *options: str) -> list[dict[str, str]]:
    assert TSHARK is not None
    argv = [TSHARK, "-r", str(pcap), "-n", *options, "-T", "fields", "-E", "occurrence=f"]
    argv += ["-E", "separator=\t"] + [x for f in ["frame.number", *fields] for x in ("-e", f)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    return [dict(zip(["frame.number", *fields], row, strict=True)) for row in rows]


def number(text: str) -> int | str:
    try:
        return int(text, 0)
    except ValueError:
        return text.lower()


def layers(frame: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["name"]: layer["fields"] for layer in frame["layers"]}


@needs_tshark
@pytest.mark.parametrize("experiment", ["tcp-vs-udp", "failures"])
def test_tshark_opens_the_capture_cleanly(captured: dict[str, Path], experiment: str) -> None:
    assert TSHARK is not None
    done = subprocess.run(
        [TSHARK, "-r", str(captured[experiment]), "-n", "-q", "-z", "io,phs"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    noise = [line for line in done.stderr.splitlines() if "Running as user" not in line]
    assert noise == []  # no "appears to be damaged", "cut short in the middle of a packet"...
    assert "eth" in done.stdout
    assert "tcp" in done.stdout
    assert "udp" in done.stdout


@needs_tshark
@pytest.mark.parametrize("experiment", ["tcp-vs-udp", "failures"])
def test_layer_view_agrees_with_tshark_on_every_frame(
    captured: dict[str, Path], experiment: str
) -> None:
    pcap = captured[experiment]
    mine = ours(pcap)
    wanted = sorted(set(FIELDS.values()))
    reference = theirs(pcap, wanted)
    assert len(mine) == len(reference) > 50
    compared = 0
    for frame, row in zip(mine, reference, strict=True):
        assert frame["number"] == int(row["frame.number"])
        for name, fields in layers(frame).items():
            for field, value in fields.items():
                key = FIELDS.get((name, field))
                if key is None:
                    continue
                theirs_value = number(row[key])
                mine_value = number(str(value)) if isinstance(value, str) else value
                if key == "tcp.flags":  # tshark's is 12 bits wide, with reserved bits
                    assert isinstance(theirs_value, int)
                    theirs_value &= 0xFF
                    assert isinstance(mine_value, int)
                    mine_value &= 0xFF
                assert mine_value == theirs_value, (frame["number"], key, value, row[key])
                compared += 1
    assert compared > 10 * len(mine)


@needs_tshark
@pytest.mark.parametrize("experiment", ["tcp-vs-udp", "failures"])
def test_checksum_verdicts_agree_with_tshark(captured: dict[str, Path], experiment: str) -> None:
    pcap = captured[experiment]
    reference = theirs(pcap, list(STATUS.values()), *CHECK_ALL)
    verdicts: dict[str, int] = {}
    for frame, row in zip(ours(pcap), reference, strict=True):
        for check in frame["checksums"]:
            good = row[STATUS[check["layer"]]] == "1"  # tshark: 1 good, 0 bad
            assert good == (check["verdict"] == "valid"), (frame["number"], check, row)
            verdicts[check["verdict"]] = verdicts.get(check["verdict"], 0) + 1
    assert "invalid" not in verdicts
    assert verdicts["valid"] > 100


def test_every_checksum_from_a_lab_host_holds(lab: Engine, captured: dict[str, Path]) -> None:
    """Offload is switched off while capturing; only the Docker host's frames stay unfinished."""
    hosts = {h.ip for h in lab.topology.hosts.values()}
    seen = 0
    for frame in ours(captured["tcp-vs-udp"]):
        src = layers(frame).get("IPv4", {}).get("src")
        for check in frame["checksums"]:
            if src in hosts:
                assert check["verdict"] == "valid", (frame["number"], check)
                seen += 1
            else:
                assert check["verdict"] in ("valid", "offloaded"), (frame["number"], check)
    assert seen > 100


def flip_payload_bit(pcap: Path, out: Path, protocol: str) -> int:
    """Copy a capture with one bit of one frame's data changed; that frame's number."""
    data = bytearray(pcap.read_bytes())
    at, number = 24, 0
    while at < len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        number += 1
        frame = at + 16
        proto = data[frame + 23]
        ihl = (data[frame + 14] & 0x0F) * 4
        header = {6: (data[frame + 14 + ihl + 12] >> 4) * 4, 17: 8}.get(proto, 0)
        payload = frame + 14 + ihl + header
        wanted = {"TCP": 6, "UDP": 17}[protocol]
        if (
            data[frame + 12 : frame + 14] == b"\x08\x00"
            and proto == wanted
            and caplen > payload - frame
        ):
            data[payload] ^= 0x01
            out.write_bytes(bytes(data))
            return number
        at = frame + caplen
    raise AssertionError(f"no {protocol} frame with data in {pcap}")


@pytest.mark.parametrize("protocol", ["TCP", "UDP"])
def test_a_corrupted_frame_is_caught(
    captured: dict[str, Path], tmp_path: Path, protocol: str
) -> None:
    bad = tmp_path / "corrupted.pcap"
    number = flip_payload_bit(captured["tcp-vs-udp"], bad, protocol)
    frame = next(f for f in ours(bad) if f["number"] == number)
    verdicts = {c["layer"]: c["verdict"] for c in frame["checksums"]}
    assert verdicts == {"IPv4": "valid", protocol: "invalid"}
    shown = run_lab_cli("packets", str(bad), "--frame", str(number), timeout=120)
    assert shown.returncode == 0
    assert f"{protocol} checksum" in shown.stdout
    assert "invalid" in shown.stdout
    if TSHARK is not None:
        row = next(
            r
            for r in theirs(bad, [STATUS[protocol]], *CHECK_ALL)
            if r["frame.number"] == str(number)
        )
        assert row[STATUS[protocol]] == "0"  # tshark calls it bad too


def test_with_offload_on_host_checksums_are_offloaded_not_invalid(
    lab: Engine, tmp_path: Path
) -> None:
    done = run_lab_cli(
        "-p", PROJECT, "run", "dispatch", "--capture", "--offload", "--results", str(tmp_path),
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "not an error" in done.stdout  # the offloaded sums are explained
    result = json.loads(next(tmp_path.glob("dispatch-*.json")).read_text())
    assert result["capture"]["offload_off"] == []
    counts = result["capture"]["checksums"]
    assert counts["TCP"].get("offloaded", 0) > 0
    assert all("invalid" not in by_verdict for by_verdict in counts.values())


def helpers_left(lab: Engine) -> list[str]:
    filters = {"label": [f"{PROJECT_LABEL}={PROJECT}", f"{ROLE_LABEL}={ROLE}"]}
    return [c["Names"][0] for c in lab.client.api.containers(all=True, filters=filters)]


def offload_of(lab: Engine, host: str) -> str:
    """A host's transmit checksum offload, read through a NET_ADMIN helper like the lab's."""
    out = lab.client.containers.run(
        lab.container(lab.topology.client.name).attrs["Config"]["Image"],
        ["python3", "-m", "services.helpers.netadmin", "all"],
        network_mode=f"container:{lab.container(host).id}",
        cap_drop=["ALL"],
        cap_add=["NET_ADMIN"],
        remove=True,
        labels={PROJECT_LABEL: PROJECT, ROLE_LABEL: "test"},
    )
    return bytes(out).decode().split()[-1]  # "eth0 on": the state of its one interface


def link_of(host: str) -> str:
    shown = run_lab_cli("-p", PROJECT, "link", host, timeout=60)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def test_after_a_captured_run_offload_is_back_and_no_helper_is_left(
    lab: Engine, captured: dict[str, Path]
) -> None:
    assert helpers_left(lab) == []
    assert {h: offload_of(lab, h) for h in lab.topology.hosts} == dict.fromkeys(
        lab.topology.hosts, "on"
    )


@pytest.fixture
def interrupted_run(lab: Engine, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = start_lab_cli(
        "-p", PROJECT, "run", "impaired-delivery", "--capture", "--results", str(tmp_path)
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_removes_impairment_capture_and_helpers(
    lab: Engine, interrupted_run: subprocess.Popen[str]
) -> None:
    # Interrupt while a lossy link (the 10% row) and both captures are in place.
    wait_for(
        lambda: (
            "-A SOCKLAB-LOSS" in link_of("shouthost")
            and any("capture-impaired" in name for name in helpers_left(lab))
        ),
        "the lossy link and the experiment's capture",
        timeout=120,
    )
    interrupted_run.send_signal(signal.SIGINT)
    _, err = interrupted_run.communicate(timeout=120)
    assert interrupted_run.returncode == 130, err
    assert err.strip().splitlines()[-1] == "lab: interrupted"
    assert helpers_left(lab) == []
    assert "-A SOCKLAB-LOSS" not in link_of("shouthost")
    assert {h: offload_of(lab, h) for h in lab.topology.hosts} == dict.fromkeys(
        lab.topology.hosts, "on"
    )


def test_link_loss_by_hand_and_reset(lab: Engine) -> None:
    def lab_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_lab_cli("-p", PROJECT, *args, timeout=120)

    try:
        assert lab_cli("link", "shouthost", "loss", "100%").returncode == 0
        assert "-A SOCKLAB-LOSS" in link_of("shouthost")
        lost = lab_cli("send", "udp", "anyone?", "--from", "client")
        assert lost.returncode == 1
        assert "timeout" in lost.stdout
    finally:
        assert lab_cli("link", "shouthost", "reset").returncode == 0
    assert "-A SOCKLAB-LOSS" not in link_of("shouthost")
    back = lab_cli("send", "udp", "anyone?", "--from", "client")
    assert back.returncode == 0, back.stdout
    assert "ANYONE?" in back.stdout


def udp_exchange(lab: Engine, data: str, answers: int, timeout: float) -> list[Event]:
    """One datagram from the client host to udp-shout, then ``answers`` recvs: its send
    and recv events."""
    steps: list[Step] = [
        {"op": "socket", "sock": "u", "type": "udp", "timeout": timeout},
        {"op": "connect", "sock": "u", "host": "udp-shout", "port": 8080},
        {"op": "send", "sock": "u", "data": data},
        *({"op": "recv", "sock": "u"} for _ in range(answers)),
    ]
    return lab.run_script(lab.topology.client.name, steps)[-1 - answers :]


def round_trip_ms(lab: Engine) -> float:
    """One UDP round trip from the client host to udp-shout, as its socket saw it."""
    send, recv = udp_exchange(lab, "ping", answers=1, timeout=5.0)
    assert recv.outcome == "ok", recv
    return (recv.t + recv.dt - send.t) * 1000


def test_link_delay_by_hand_and_reset(lab: Engine) -> None:
    """tc-netem where the kernel has it, the lab's own user-space netem where not."""
    done = run_lab_cli("-p", PROJECT, "link", "shouthost", "delay", "200ms", timeout=120)
    try:
        assert done.returncode == 0, done.stderr
        shown = link_of("shouthost")
        assert "netem" in shown
        if "user-space netem" in done.stdout:
            assert "services.helpers.netem 7 200 0 0 0 0" in shown
            assert "NFQUEUE" in shown
        assert round_trip_ms(lab) >= 200  # the answer left shouthost 200 ms late
    finally:
        reset = run_lab_cli("-p", PROJECT, "link", "shouthost", "reset", timeout=120)
        assert reset.returncode == 0, reset.stderr
    assert "netem" not in link_of("shouthost")
    assert [h for h in helpers_left(lab) if "netem" in h] == []
    assert round_trip_ms(lab) < 200


def test_link_duplicate_by_hand_sends_every_answer_twice(lab: Engine) -> None:
    done = run_lab_cli("-p", PROJECT, "link", "shouthost", "duplicate", "100%", timeout=120)
    try:
        assert done.returncode == 0, done.stderr
        answers = udp_exchange(lab, "twice?", answers=2, timeout=2.0)[1:]
        assert [(e.outcome, e.data) for e in answers] == [("ok", "TWICE?"), ("ok", "TWICE?")]
    finally:
        assert run_lab_cli("-p", PROJECT, "link", "shouthost", "reset", timeout=120).returncode == 0
    once = udp_exchange(lab, "twice?", answers=2, timeout=2.0)[1:]
    assert [e.outcome for e in once] == ["ok", "timeout"]  # one datagram, one answer
