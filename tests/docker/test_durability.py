"""db keeps every acknowledged write through ten SIGKILLs (appendfsync always)."""

from __future__ import annotations

import lab as netlab
from lab.experiments.builtin.db_kill import DbKill
from lab.experiments.model import run_experiment


def test_no_acknowledged_write_is_lost_across_ten_kills(net: netlab.Lab) -> None:
    result = run_experiment(DbKill(kills=10, seconds_per_kill=1.0, seed=3), net)
    checks = {c.id: c for c in result.checks}
    runs = result.facts["runs"]
    assert runs["always"]["kills"] == 10
    assert runs["always"]["acked"] > 100
    assert runs["always"]["broken"] >= 1  # the kills really cut the writer off
    assert runs["always"]["lost"] == 0, checks["fsync-always"].observed
    assert checks["torn-record"].held, checks["torn-record"].observed
    assert result.passed, {c.id: c.observed for c in result.checks if not c.held}
