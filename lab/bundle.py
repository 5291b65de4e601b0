"""The lab the package carries: the default topology, the services' build context and
the examples, so that `socklab up` works from any folder with nothing cloned.

In the wheel they are files under ``lab/`` (``compose.yaml``, ``services/``,
``examples/``); in a checkout those three are links to the repository's top level, so
there is one copy of each. Compose reads the default topology where it lies: its build
context (``./services``) sits beside it in both cases. Nothing is ever written here
(an installed package may be read-only): ``init`` copies it to a folder of the user's.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from lab.errors import UsageError
from lab.names import PROJECT
from lab.names import SERVICES_IMAGE as IMAGE

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
    of them is left untouched, and UsageError says which.

    The copy is a project of its own, named after its folder, with an image of its own:
    the default lab and any copy can then run side by side, and editing one's services
    never rebuilds another's image."""
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
    project = project_name(destination)
    topology = destination / "compose.yaml"
    topology.write_text(renamed(topology.read_text(), project))
    for extra in sorted((destination / "examples").rglob("*.yaml")):  # they name the image
        extra.write_text(extra.read_text().replace(IMAGE, f"{project}-services:latest"))
    return written


def project_name(folder: Path) -> str:
    """A Compose project name from a folder's name, as Compose itself makes one: lower
    case letters, digits, dashes and underscores, starting with a letter or digit."""
    name = re.sub(r"[^a-z0-9_-]", "", folder.resolve().name.lower()).lstrip("-_")
    return name or PROJECT


def renamed(topology: str, project: str) -> str:
    """The default topology's text under another project name and image name."""
    if f"\nname: {PROJECT}\n" not in topology or IMAGE not in topology:
        raise AssertionError("the default topology no longer names its project or image")
    text = topology.replace(f"\nname: {PROJECT}\n", f"\nname: {project}\n", 1)
    return text.replace(IMAGE, f"{project}-services:latest")
