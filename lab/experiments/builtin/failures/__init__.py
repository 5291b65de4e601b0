"""failures: what each client sees when a process dies, a host vanishes, a process freezes,
a network is cut, or a server restarts (the experiment: experiment.py).

One concept per module, in the order each builds on the last:

  model         rows (faults), columns (clients), cells (what one client saw)
  steps         one client's conversation as socket-script steps
  expectations  what each cell should show: the claims
  probes        bystanders between two hosts, beside the clients
  kernel        the struck host's ICMP/UDP counters around a row, read into words
  judgement     a cell from its events, and whether it holds (pure)
  runner        the clients' sessions, side by side, phase by phase
  schedule      rows from a YAML file; targets drawn with a seed
  view          the matrix as a table; picture: one timeline per cell
  experiment    Failures, which runs a row at a time and judges the result
"""

from lab.experiments.builtin.failures.expectations import EXPECTED, Expect, claims_of, expectation
from lab.experiments.builtin.failures.experiment import Failures
from lab.experiments.builtin.failures.judgement import derive, during_verdict, judge, unjudged
from lab.experiments.builtin.failures.model import (
    DEFAULT_ROWS,
    FAULTS,
    MACHINE_ROWS,
    Cell,
    Column,
    Row,
    columns_of,
)
from lab.experiments.builtin.failures.probes import Bystander, bystanders, judge_bystander
from lab.experiments.builtin.failures.schedule import draw_targets, load_schedule
from lab.experiments.builtin.failures.steps import Client, answered_tags

__all__ = [
    "DEFAULT_ROWS",
    "EXPECTED",
    "FAULTS",
    "MACHINE_ROWS",
    "Bystander",
    "Cell",
    "Client",
    "Column",
    "Expect",
    "Failures",
    "Row",
    "answered_tags",
    "bystanders",
    "claims_of",
    "columns_of",
    "derive",
    "draw_targets",
    "during_verdict",
    "expectation",
    "judge",
    "judge_bystander",
    "load_schedule",
    "unjudged",
]
