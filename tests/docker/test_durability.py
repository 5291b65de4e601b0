"""db keeps every acknowledged write through ten SIGKILLs (appendfsync always), and through a
power loss; a db that acknowledges before it fsyncs is caught by the power-loss claim."""

from __future__ import annotations

import lab as netlab
from lab.experiments.builtin.db_kill import DbKill
from lab.experiments.model import run_experiment


def test_no_acknowledged_write_is_lost_across_ten_kills(net: netlab.Lab) -> None:
    result = run_experiment(
        DbKill(kills=10, seconds_per_kill=1.0, seed=3, policies=("always",)), net
    )
    checks = {c.id: c for c in result.checks}
    runs = result.facts["runs"]
    assert runs["always"]["kills"] == 10
    assert runs["always"]["acked"] > 100
    assert runs["always"]["broken"] >= 1  # the kills really cut the writer off
    assert runs["always"]["lost"] == 0, checks["fsync-always"].observed
    assert checks["torn-record"].held, checks["torn-record"].observed
    assert result.facts["power"]["always"]["fsyncs"] > 0  # fsync observed, not assumed
    assert result.passed, {c.id: c.observed for c in result.checks if not c.held}


def test_a_db_that_acknowledges_before_fsync_fails_the_power_loss_claim(net: netlab.Lab) -> None:
    # The same experiment, its power-loss copy of db set to a deliberately wrong `always`
    # (DB_UNSAFE_ACK_BEFORE_FSYNC): replies leave before the fsync that should cover them.
    unsafe = DbKill(
        kills=1, seconds_per_kill=0.5, unsafe_always=True, policies=("always", "everysec")
    )
    result = run_experiment(unsafe, net)
    checks = {c.id: c for c in result.checks}
    power = result.facts["power"]
    assert power["always"]["unsafe"] is True
    assert power["always"]["lost"] > 0, (checks["power-always"].observed, power)
    assert not checks["power-always"].held
    assert checks["power-everysec"].held, checks["power-everysec"].observed  # the rest as ever
    assert not result.passed
