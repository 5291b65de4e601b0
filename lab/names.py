"""The project's own names, in one place: everything a user or Docker sees it by.

The distribution and the command are ``socklab`` (``lab`` is its short second
name, and ``import lab`` the API). Labels on containers, networks and images,
the Compose project of the default topology, image names and temporary files
all start with ``PROJECT``, so the lab never takes a name another tool uses.
"""

from __future__ import annotations

PROJECT = "socklab"
PREFIX = f"{PROJECT}."  # every label key the lab reads or writes
EXTENSION = f"x-{PROJECT}"  # the Compose top-level extension (shortcuts)
SERVICES_IMAGE = f"{PROJECT}-services:latest"  # what compose.yaml names, by default
BASE_REPOSITORY = f"{PROJECT}-base"  # the Python base built from Debian's packages
# Until 0.1 the lab's labels were ``lab.*`` and its extension ``x-lab``: a topology
# still written that way is told what to rename, not silently read as label-less.
OLD_PREFIX = "lab."
OLD_EXTENSION = "x-lab"
# Environment variables the CLI names in its help before it imports anything heavy.
NAME_ENV = "LAB_NAME"  # the named lab a command opens (lab/engine/named.py)
EXPERIMENTS_ENV = "LAB_EXPERIMENTS"  # the folder of a user's experiment files
EXPERIMENTS_FOLDER = "experiments"  # ... when it is not set


def label(key: str) -> str:
    """The label ``key`` under the lab's prefix: ``label("ports")`` is ``socklab.ports``."""
    return PREFIX + key
