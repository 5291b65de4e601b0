"""Fuzz campaigns against the running services: a bounded number of inputs, zero crashes."""

from __future__ import annotations

import pytest

from lab import fuzz
from lab.backends.engine import Engine

INPUTS = 150


@pytest.mark.parametrize("service", ["db", "http", "tcp-shout", "udp-shout"])
def test_service_survives_a_fuzz_campaign(
    lab: Engine, service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (endpoint,) = fuzz.targets(lab.topology, [service])
    campaign = fuzz.run_campaign(lab, endpoint, INPUTS, seed=1)
    with capsys.disabled():  # the counts belong in the CI log
        print(f"\n{campaign.line()}")
    assert sum(campaign.outcomes.values()) == INPUTS
    assert campaign.crashes == 0
    assert campaign.healthy_after
    assert lab.states()[service].ready
    # Every other service kept serving too.
    assert all(s.ready for s in lab.states().values())
