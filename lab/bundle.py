"""The lab the package carries: the default topology, the services' build context and
the examples, so that `socklab up` works from any folder with nothing cloned.

In the wheel they are files under ``lab/`` (``compose.yaml``, ``services/``,
``examples/``); in a checkout those three are links to the repository's top level, so
there is one copy of each. Compose reads the default topology where it lies: its build
context (``./services``) sits beside it in both cases. Nothing is ever written here
(an installed package may be read-only): ``init`` copies it to a folder of the user's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lab.errors import UsageError

ROOT = Path(__file__).parent
TOPOLOGY = ROOT / "compose.yaml"
COPIED = ("compose.yaml", "services", "examples")  # what `init` writes, in this order
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")


def is_builtin(folder: Path) -> bool:
    """Whether Compose would run in the package's own folder (where nothing is written)."""
    return folder.resolve() == ROOT.resolve()


def init(destination: Path) -> list[Path]:
    """An editable copy of the default lab in ``destination`` (made if missing): its
    topology, the services it builds and the examples. A folder that already holds any
    of them is left untouched, and UsageError says which."""
    clashes = [destination / name for name in COPIED if (destination / name).exists()]
    if clashes:
        raise UsageError(
            f"{destination} already holds {', '.join(p.name for p in clashes)}",
            "choose an empty folder (socklab init DIR), or move those away first",
        )
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for name in COPIED:
        source, target = ROOT / name, destination / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=_SKIPPED)
        else:
            shutil.copyfile(source, target)
        written.append(target)
    return written
