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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each public name, where it lives ("module" or "module:attribute"). They are imported on
# first use (PEP 562): `import lab.cli` runs this file too, and the command line must
# not pay for the Docker SDK and every experiment before it parses its arguments.
_HOMES = {
    "Lab": "lab.api",
    "Sent": "lab.api",
    "open": "lab.api",
    "started": "lab.api",
    "ExitCode": "lab.errors",
    "LabError": "lab.errors",
    "load_experiment": "lab.experiments.files:load",
    "Check": "lab.experiments.model",
    "Claim": "lab.experiments.model",
    "Context": "lab.experiments.model",
    "Experiment": "lab.experiments.model",
    "Needs": "lab.experiments.model",
    "Observations": "lab.experiments.model",
    "Result": "lab.experiments.model",
    "Verdict": "lab.experiments.model",
    "Verdicts": "lab.experiments.model",
    "judge_result": "lab.experiments.model",
    "run": "lab.experiments.model:run_experiment",
    "Predictions": "lab.experiments.predictions",
    "HostSocket": "lab.services.probes.porttable",
    "Syscall": "lab.syscalls.strace",
    "Trace": "lab.syscalls.trace",
    "Topology": "lab.topology",
    "Event": "lab.traffic.script",
    "Events": "lab.traffic.script",
    "Script": "lab.traffic.script",
}

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


def __getattr__(name: str) -> Any:
    """A public name, imported on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'lab' has no attribute {name!r}")
    module, _, attribute = home.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # once found, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
