"""Every repository path the docs name exists, and every `socklab COMMAND` they show is one.

A doc that names a file which was renamed or never written (`pcapstream.py`,
`lab/bench.py`) sends a reader looking for nothing. Two kinds of names are checked:

- a path that starts at a top folder of the repository (`lab/api.py`, `services/...`,
  `docs/...`, `examples/...`, `tests/...`, `scripts/...`, `benchmarks/...`), in prose,
  code spans or code blocks, relative to the repository's root;
- a Markdown link that is not a URL (`[install](install.md)`,
  `(../lab/experiments/result.schema.json)`), relative to the doc's own folder;
- a file named alone in a code span (`dissect.py`, `echo.yaml`): some file of that name
  is in the repository.

A name with a placeholder in it (`<time>`, `{tcp,udp}`, `*`) must match at least one file.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from lab.cli import build_parser
from tests.pure.test_names import _COMMAND, OUTPUT

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "benchmarks" / "README.md",
]
TOPS = ("lab", "services", "docs", "examples", "tests", "scripts", "benchmarks")
# A path from the repository's root: after a space, a quote, a bracket or a colon, with
# an optional ./ (a Compose file's bind mount), up to the first character no path has.
_ROOTED = re.compile(
    r"(?:^|(?<=[\s`'\"(\[=]))(?:\./)?((?:" + "|".join(TOPS) + r")/[A-Za-z0-9_./<>{}*-]*)",
    re.MULTILINE,
)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_BARE = re.compile(r"`([A-Za-z0-9_-]+\.(?:py|yaml|md|json|html|js|css|sh))`")
_PLACEHOLDER = re.compile(r"<[^>]*>|\{[^}]*\}|\.\.\.")
# Names that look like repository paths and are not: where each occurs, and why.
NOT_PATHS: dict[str, str] = {
    "lab/backends/kubernetes/": "docs/architecture.md: where a third backend would go, unwritten",
    "my-host.yaml": "docs/topologies.md: the reader's own file, written from the page",
    "report.html": "docs/classroom.md: what `socklab class grades` writes",
}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _exists(path: Path) -> bool:
    text = str(path)
    if not any(c in text for c in "*<{"):
        return path.exists()
    pattern = _PLACEHOLDER.sub("*", str(path.relative_to(ROOT)))
    return any(ROOT.glob(pattern))


def rooted_paths(text: str) -> list[str]:
    """The repository paths a doc names, as written (trailing punctuation dropped)."""
    found = []
    for match in _ROOTED.finditer(text):
        name = match.group(1).rstrip(".,;:")
        if name.endswith("/") or "." in name.rsplit("/", 1)[-1] or "/" in name:
            found.append(name)
    return found


def links(text: str) -> list[str]:
    """The targets of its Markdown links that are files, not URLs or anchors."""
    out = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z+.-]*:", target) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def test_the_finder_finds_what_a_doc_names() -> None:
    text = (
        "see `lab/api.py`, (services/probes/sockscript.py) and ./examples/servers/echo.py:/x,"
        " not /opt/lab/services nor services.runtime.healthcheck;\n"
        "lab/engine/ holds it. [x](../docs/install.md#top) [y](https://example.org/a.md)"
    )
    assert rooted_paths(text) == [
        "lab/api.py",
        "services/probes/sockscript.py",
        "examples/servers/echo.py",
        "lab/engine/",
    ]
    assert links(text) == ["../docs/install.md"]


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    text = doc.read_text()
    missing = [
        name
        for name in dict.fromkeys(rooted_paths(text))
        if name not in NOT_PATHS and not _exists(ROOT / name)
    ]
    missing += [
        target
        for target in dict.fromkeys(links(text))
        if not _exists((doc.parent / target).resolve())
    ]
    assert not missing, f"{_rel(doc)} names what the repository does not have: {missing}"


def test_every_file_a_doc_names_alone_is_somewhere() -> None:
    """`pcapstream.py` in a sentence is as wrong as `lab/pcapstream.py`."""
    have = {p.name for top in (*TOPS, ".devcontainer") for p in (ROOT / top).rglob("*")}
    have |= {p.name for p in ROOT.iterdir()}
    missing = {
        f"{_rel(doc)}: {name}"
        for doc in DOCS
        for name in _BARE.findall(doc.read_text())
        if name not in have and name not in NOT_PATHS
    }
    assert not missing, sorted(missing)


def test_every_name_excused_is_still_named() -> None:
    """An entry of NOT_PATHS whose name no doc says any more goes."""
    every = {
        name
        for doc in DOCS
        for name in [*rooted_paths(doc.read_text()), *_BARE.findall(doc.read_text())]
    }
    assert set(NOT_PATHS) <= every, set(NOT_PATHS) - every


def test_every_command_benchmarks_readme_shows_exists() -> None:
    """README.md and docs/ are checked by tests/pure/test_names.py; this adds the
    benchmarks' page, with the same reading of a command."""
    parser = build_parser("socklab")
    found = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(next(found).choices)
    shown = set()
    fenced = False
    for line in (ROOT / "benchmarks" / "README.md").read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        for match in _COMMAND.finditer(line):
            if match.start() == 0 and not line.startswith("`") and not fenced:
                continue  # prose that begins with "lab ..."
            shown.add(match.group(2))
    missing = shown - OUTPUT - commands
    assert not missing, f"benchmarks/README.md shows commands that do not exist: {missing}"
