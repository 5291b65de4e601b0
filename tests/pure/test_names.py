"""The project's name everywhere a user meets it, and only its own."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from lab.cli import _examples, build_parser
from lab.names import OLD_PREFIX

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = [p for top in ("lab", "services") for p in (ROOT / top).rglob("*") if p.is_file()]
# A command as the docs show it: in backticks, on a line of a code block, or after
# .venv/bin/; WORD is the subcommand (options like -f FILE or --name N may come first).
_COMMAND = re.compile(
    r"(?:`|^\s*(?:\$ )?|bin/)(?:socklab|lab)"
    r"((?:\s+(?:-[fp]\s+\S+|--(?:name|cluster|project-dir)(?:\s+|=)\S+|-v+))*)"
    r"\s+([a-z][a-z-]*)\b"
)
OUTPUT = {"is"}  # "lab is up (...)": what `up` prints, quoted in the README


def _code_files() -> list[Path]:
    return [p for p in CODE if "__pycache__" not in p.parts and p.suffix != ".png"]


def test_no_code_names_the_old_project() -> None:
    for path in _code_files():
        text = path.read_text(errors="replace")
        assert "netlab" not in text.lower(), path


def test_no_code_writes_a_label_under_the_old_prefix() -> None:
    old = re.compile(
        r"[\"']" + re.escape(OLD_PREFIX) + r"(role|ports|routes|link|machine|build|"
        r"base|purpose|target|anchor|cluster|name|session)\b"
    )
    for path in _code_files():
        text = path.read_text(errors="replace")
        found = [m.group(0) for m in old.finditer(text)]
        if path.name == "names.py" or (path.name == "model.py" and "topology" in path.parts):
            continue  # where the old words are named, to refuse them
        assert not found, (path, found)


def _documented() -> set[str]:
    """Every subcommand word the README and docs show after socklab or lab."""
    words = set()
    for doc in DOCS:
        fenced = False
        for line in doc.read_text().splitlines():
            if line.startswith("```"):
                fenced = not fenced
                continue
            for match in _COMMAND.finditer(line):
                at_start = match.start() == 0 and not line.startswith("`")
                if at_start and not fenced:
                    continue  # prose that begins with "lab ..."
                words.add(match.group(2))
    return words - OUTPUT


def test_the_docs_name_commands() -> None:
    assert {"up", "down", "status", "run", "send", "init", "web", "cluster"} <= _documented()


@pytest.mark.parametrize("prog", ["socklab", "lab"])
def test_every_command_the_docs_show_exists_under_both_names(prog: str) -> None:
    parser = build_parser(prog)
    found = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(next(found).choices)
    missing = _documented() - commands
    assert not missing, f"the docs show {prog} {sorted(missing)}, which {prog} does not have"
    assert f"  {prog} up " in _examples(prog)


@pytest.mark.parametrize(
    ("argv0", "prog"),
    [
        ("/home/ada/.local/bin/socklab", "socklab"),
        ("socklab.exe", "socklab"),
        ("/usr/bin/lab", "lab"),
        ("/x/lab/__main__.py", "lab"),  # python -m lab
    ],
)
def test_the_command_answers_to_the_name_it_was_called_by(
    argv0: str, prog: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.cli import command_name

    monkeypatch.setattr("sys.argv", [argv0])
    assert command_name() == prog


def test_the_help_examples_use_the_name_typed() -> None:
    lines = _examples("socklab").splitlines()
    assert not [line for line in lines if line.startswith("  lab ")]
    assert sum(line.startswith("  socklab ") for line in lines) >= 30
    # the second column stays where it was
    up = next(line for line in lines if line.startswith("  socklab up "))
    assert up.index("build, start") == 34
