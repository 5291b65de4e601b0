"""socklab: a containerised networking lab, and its Python API for lab scripts.

    import lab

    net = lab.open()                          # the lab the Compose files describe
    print(net.send("tcp-shout", "hello"))     # every socket call and what came back
    with net.fault("kill", "db"):             # undone when the block ends
        print(net.send("db", "PING").error)   # connect: ECONNREFUSED

    result = lab.run(MyExperiment(), net)     # claims judged from what was recorded
    result.save("results")

docs/scripting.md is the tutorial and the reference; everything named here is the
public API, and nothing else under ``lab`` is promised to stay as it is.
"""

from __future__ import annotations

from lab.api import Lab, Sent, open, started
from lab.errors import ExitCode, LabError
from lab.experiments.files import load as load_experiment
from lab.experiments.model import (
    Check,
    Claim,
    Context,
    Experiment,
    Needs,
    Observations,
    Result,
    Verdict,
    Verdicts,
    judge_result,
)
from lab.experiments.model import run_experiment as run
from lab.experiments.predictions import Predictions
from lab.services.probes.porttable import HostSocket
from lab.syscalls.strace import Syscall
from lab.syscalls.trace import Trace
from lab.topology import Topology
from lab.traffic.script import Event, Events, Script

__all__ = [
    "Check",
    "Claim",
    "Context",
    "Event",
    "Events",
    "ExitCode",
    "Experiment",
    "HostSocket",
    "Lab",
    "LabError",
    "Needs",
    "Observations",
    "Predictions",
    "Result",
    "Script",
    "Sent",
    "Syscall",
    "Topology",
    "Trace",
    "Verdict",
    "Verdicts",
    "judge_result",
    "load_experiment",
    "open",
    "run",
    "started",
]
