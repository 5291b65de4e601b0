"""Which code measured a row: the commit, and whether the tree held changes beside it.

A row stamped with a commit must be one that commit's code could produce, so a page
(--markdown) is refused from a tree with changes. The benchmarks' own outputs (the JSON,
its pictures, the page) are not code and do not count: a run of some benchmarks after
another leaves them changed.
"""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.errors import DirtyTree

GIT_TIMEOUT = 10  # seconds: git answers at once, or something is wrong with the tree


@dataclass(frozen=True)
class Stamp:
    commit: str  # short hash, or "unknown" outside a git checkout
    changed: tuple[str, ...] | None  # paths with uncommitted changes; None: not known

    @property
    def dirty(self) -> bool | None:
        return None if self.changed is None else bool(self.changed)


def changed(porcelain: str, outputs: list[str]) -> list[str]:
    """Paths that `git status --porcelain` lists, less the benchmarks' own outputs
    (``outputs``: files or folders, relative to the top of the tree). Pure."""
    found = []
    for line in porcelain.splitlines():
        if len(line) < 4:
            continue
        path = line[3:].split(" -> ")[-1].strip('"')
        if any(path == o or path.startswith(o.rstrip("/") + "/") for o in outputs if o):
            continue
        found.append(path)
    return found


def _git(top: Path, *args: str) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "-C", str(top), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT
        )
        if done.returncode == 0:
            return done.stdout
    return None


def of_code(outputs: list[Path]) -> Stamp:
    """The stamp of the code this process runs (the checkout `lab` is imported from)."""
    here = Path(__file__).resolve().parents[1]  # the `lab` package
    top_text = _git(here, "rev-parse", "--show-toplevel")
    commit = _git(here, "rev-parse", "--short", "HEAD")
    if top_text is None or commit is None:
        return Stamp("unknown", None)
    top = Path(top_text.strip())
    status = _git(top, "status", "--porcelain")
    if status is None:
        return Stamp(commit.strip(), None)
    relative = []
    for output in outputs:
        with contextlib.suppress(ValueError):
            relative.append(str(output.resolve().relative_to(top)))
    return Stamp(commit.strip(), tuple(changed(status, relative)))


def across(before: Stamp, after: Stamp) -> Stamp:
    """The stamp of a whole run from its two ends: a tree that changed meanwhile is dirty
    (the code that ran may be either). Pure."""
    if before == after:
        return before
    if before.changed is None or after.changed is None:
        return Stamp(before.commit, None)
    changed = sorted({*before.changed, *after.changed})
    if after.commit != before.commit:
        changed.append(f"HEAD moved to {after.commit} during the run")
    return Stamp(before.commit, tuple(changed or ["the tree changed during the run"]))


def check_page(code: Stamp) -> None:
    """A page (--markdown) only from a clean tree at a known commit: else DirtyTree."""
    if code.dirty is not False:
        raise DirtyTree(None if code.changed is None else list(code.changed))


def text(measured: dict[str, object]) -> str:
    """The run column's commit: plain only when the tree was clean."""
    commit = str(measured.get("commit", "unknown"))
    if "dirty" not in measured:
        return f"{commit} (tree state not recorded)"
    dirty = measured["dirty"]
    if dirty is None:
        return f"{commit} (tree state unknown)"
    return f"{commit} (uncommitted changes)" if dirty else commit
