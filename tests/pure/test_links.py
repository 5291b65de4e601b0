"""Link impairments, parsed and turned into commands: table-driven, no Docker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.chaos.impairment import (
    CHAIN,
    NETEM_CHAIN,
    Impairment,
    apply_script,
    netem_args,
    parse,
    reset_script,
    user_space_argv,
)
from lab.errors import UsageError


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["loss", "10%"], Impairment(loss=10.0)),
        (["loss", "2.5"], Impairment(loss=2.5)),
        (["rate", "1Mbit"], Impairment(rate="1mbit")),
        (["delay", "100ms", "jitter", "20ms"], Impairment(delay=100.0, jitter=20.0)),
        (["delay", "1s"], Impairment(delay=1000.0)),
        (["delay", "250us"], Impairment(delay=0.25)),
        (["loss", "5%", "rate", "500kbit"], Impairment(loss=5.0, rate="500kbit")),
        (["duplicate", "1%", "corrupt", "0.1%"], Impairment(duplicate=1.0, corrupt=0.1)),
    ],
)
def test_parse(words: list[str], expected: Impairment) -> None:
    assert parse(words) == expected


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["loss"], "loss needs a value"),
        (["lose", "10%"], "no impairment 'lose'"),
        (["loss", "110%"], "from 0 to 100"),
        (["loss", "ten"], "give a percentage"),
        (["rate", "fast"], "e.g. 1mbit"),
        (["delay", "soon"], "give a time"),
        (["jitter", "5ms"], "give delay too"),
        (["loss", "1%", "loss", "2%"], "loss given twice"),
    ],
)
def test_parse_errors_say_what_is_wrong(words: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(words)


def run_script(script: str, tmp_path: Path, fail_on: str = "") -> list[list[str]]:
    """Run a link script under sh with stand-ins for ip, tc and iptables that log their
    arguments (the host has lo, eth0 and eth1, as a router does): what it would do."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    for tool in ("tc", "iptables"):
        (bin_dir / tool).write_text(
            f'#!/bin/sh\necho "{tool} $*" >> {log}\n'
            + (f'case "$*" in *"{fail_on}"*) exit 2;; esac\n' if fail_on else "")
        )
    (bin_dir / "ip").write_text(
        "#!/bin/sh\nprintf '1: lo: <LOOPBACK>\\n2: eth0@if9: <UP>\\n3: eth1@if11: <UP>\\n'\n"
    )
    for program in bin_dir.iterdir():
        program.chmod(0o755)
    subprocess.run(
        ["sh", "-c", script], env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, check=False, timeout=10
    )
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def added(calls: list[list[str]]) -> list[list[str]]:
    """The calls that add something (the reset before them only removes)."""
    return [c for c in calls if {"add", "-A", "-I", "-N"} & set(c)]


def test_loss_drops_a_share_of_what_arrives_on_every_interface_but_loopback(
    tmp_path: Path,
) -> None:
    calls = added(run_script(apply_script(Impairment(loss=10.0)), tmp_path))
    # iptables(8), statistic match: --probability p drops a share p of the packets, 0 <= p <= 1
    drop = next(c for c in calls if "statistic" in c)
    assert drop[drop.index("--probability") + 1] == "0.100000"
    assert drop[-2:] == ["-j", "DROP"]
    jump = next(c for c in calls if "INPUT" in c)
    assert jump[jump.index("-i") - 1 : jump.index("-i") + 2] == ["!", "-i", "lo"]
    assert not [c for c in calls if c[0] == "tc"]  # loss alone touches no queueing discipline


def test_rate_is_a_token_bucket_on_each_interface(tmp_path: Path) -> None:
    calls = added(run_script(apply_script(Impairment(rate="1mbit")), tmp_path))
    tc = [c for c in calls if c[0] == "tc"]
    assert sorted(c[c.index("dev") + 1] for c in tc) == ["eth0", "eth1"]
    assert all(c[c.index("root") + 1 : c.index("root") + 4] == ["tbf", "rate", "1mbit"] for c in tc)


def test_netem_carries_delay_and_the_rest_and_rate_rides_along(tmp_path: Path) -> None:
    imp = Impairment(delay=100, jitter=20, duplicate=1, corrupt=0.5, reorder=25, rate="1mbit")
    assert netem_args(imp) == [
        *("delay", "100ms", "20ms", "duplicate", "1%", "corrupt", "0.5%"),
        *("reorder", "25%", "rate", "1mbit"),
    ]
    tc = [c for c in added(run_script(apply_script(imp), tmp_path)) if c[0] == "tc"]
    assert [c[c.index("dev") + 1] for c in tc] == ["eth0", "eth1"]
    assert all(c[c.index("netem") + 1 :] == netem_args(imp) for c in tc)
    assert netem_args(Impairment(loss=5, rate="1mbit")) == []  # no netem needed


def test_a_kernel_without_netem_stops_the_script_there(tmp_path: Path) -> None:
    calls = run_script(apply_script(Impairment(delay=50, loss=5)), tmp_path, fail_on="netem")
    assert [c for c in calls if "netem" in c] == [
        ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "50ms"]
    ]


def test_without_kernel_netem_the_queue_rule_sends_frames_to_user_space(tmp_path: Path) -> None:
    imp = Impairment(delay=50, jitter=5, duplicate=2, rate="1mbit")
    calls = added(run_script(apply_script(imp, kernel_netem=False), tmp_path))
    assert not any("netem" in c for c in calls)
    queue = next(c for c in calls if "NFQUEUE" in c)
    assert queue[queue.index("--queue-num") + 1] == "7"
    assert "--queue-bypass" in queue  # a netem that is gone lets frames pass, not drop
    jump = next(c for c in calls if "OUTPUT" in c)
    assert jump[jump.index("-o") - 1 : jump.index("-o") + 2] == ["!", "-o", "lo"]
    tbf = [c for c in calls if "tbf" in c]
    assert len(tbf) == 2  # rate: a token bucket on each interface
    assert user_space_argv(imp)[3:] == ["7", "50", "5", "0", "2", "0"]
    loss_only = added(run_script(apply_script(Impairment(loss=5), kernel_netem=False), tmp_path))
    assert not any(NETEM_CHAIN in c for c in loss_only[-3:])


def test_reorder_without_delay_is_refused() -> None:
    with pytest.raises(UsageError, match="give delay too"):
        netem_args(Impairment(reorder=10))


def test_reset_removes_what_apply_made_and_tolerates_nothing_set(tmp_path: Path) -> None:
    calls = run_script(reset_script(), tmp_path, fail_on=" ")  # every tool fails: nothing set
    assert sorted(c[c.index("dev") + 1] for c in calls if c[:3] == ["tc", "qdisc", "del"]) == [
        "eth0",
        "eth1",
    ]
    assert {" ".join(c) for c in calls} >= {f"iptables -X {CHAIN}", f"iptables -X {NETEM_CHAIN}"}
    (tmp_path / "apply").mkdir()
    applied = run_script(apply_script(Impairment(loss=1)), tmp_path / "apply")
    first_add = next(i for i, c in enumerate(applied) if c in added(applied))
    assert ["iptables", "-X", CHAIN] in applied[:first_add]  # apply starts from a clean link


def test_impairment_text() -> None:
    assert Impairment().text() == "none"
    assert Impairment(loss=10, delay=50, rate="1mbit").text() == "loss 10%, rate 1mbit, delay 50ms"
