"""Link impairments, parsed and turned into commands: table-driven, no Docker."""

from __future__ import annotations

import pytest

from lab.chaos.links import (
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


def test_loss_is_an_iptables_statistic_drop_on_arrival() -> None:
    script = apply_script(Impairment(loss=10.0)).splitlines()
    assert script[0] == "set -e"
    assert f"iptables -N {CHAIN}" in script
    assert (
        f"iptables -A {CHAIN} -m statistic --mode random --probability 0.100000 -j DROP" in script
    )
    assert f'iptables -I INPUT -i "$IF" -j {CHAIN}' in script
    assert not any(line.startswith("tc qdisc add") for line in script)


def test_rate_alone_is_a_token_bucket() -> None:
    assert apply_script(Impairment(rate="1mbit")).splitlines()[-1] == (
        'tc qdisc add dev "$IF" root tbf rate 1mbit burst 32kbit latency 400ms'
    )


def test_netem_carries_delay_and_the_rest_and_rate_rides_along() -> None:
    imp = Impairment(delay=100, jitter=20, duplicate=1, corrupt=0.5, reorder=25, rate="1mbit")
    assert netem_args(imp) == [
        *("delay", "100ms", "20ms", "duplicate", "1%", "corrupt", "0.5%"),
        *("reorder", "25%", "rate", "1mbit"),
    ]
    assert apply_script(imp).splitlines()[-1].startswith('tc qdisc add dev "$IF" root netem delay')
    assert netem_args(Impairment(loss=5, rate="1mbit")) == []  # no netem needed


def test_without_kernel_netem_the_queue_rule_sends_frames_to_user_space() -> None:
    imp = Impairment(delay=50, jitter=5, duplicate=2, rate="1mbit")
    script = apply_script(imp, kernel_netem=False).splitlines()
    assert not any("netem" in line and line.startswith("tc") for line in script)
    assert (
        f"iptables -A {NETEM_CHAIN} -m mark ! --mark 0x4e4c -j NFQUEUE --queue-num 7 "
        "--queue-bypass" in script
    )
    assert f'iptables -A OUTPUT -o "$IF" -j {NETEM_CHAIN}' in script
    assert script[-1].startswith('tc qdisc add dev "$IF" root tbf rate 1mbit')  # rate: tbf
    assert user_space_argv(imp) == [
        "python3",
        "-m",
        "services.helpers.netem",
        "7",
        "50",
        "5",
        "0",
        "2",
        "0",
    ]
    assert f"-N {NETEM_CHAIN}" not in apply_script(Impairment(loss=5), kernel_netem=False)


def test_reorder_without_delay_is_refused() -> None:
    with pytest.raises(UsageError, match="give delay too"):
        netem_args(Impairment(reorder=10))


def test_every_apply_starts_from_a_clean_link_and_reset_tolerates_nothing_set() -> None:
    reset = reset_script().splitlines()
    assert apply_script(Impairment(loss=1)).splitlines()[1 : 1 + len(reset)] == reset
    assert all(line.endswith("|| true") for line in reset_script().splitlines()[1:])


def test_impairment_text() -> None:
    assert Impairment().text() == "none"
    assert Impairment(loss=10, delay=50, rate="1mbit").text() == "loss 10%, rate 1mbit, delay 50ms"
