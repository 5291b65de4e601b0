"""Every code block of docs/scripting.md and docs/topologies.md, run as a reader would.

A newcomer follows these pages alone, so each block is run against a real lab, in the
order the page gives it:

- python: a REPL block (``>>>``) is run as a doctest, its printed answers compared
  (the test lab's project name and subnet read as the page's; times in ms ignored);
  any other block is executed, in one namespace per page, in a folder of its own,
  with ``lab.open()`` and ``lab.started()`` opening the test lab. The tutorial's
  experiment file is written where the page says to save it.
- yaml: a Compose override is resolved by Compose and read by the lab's topology
  loader, with compose.yaml; the page's whole host is brought up. A predictions file
  is written where the page's command reads it.
- sh: run, line by line in one shell, with ``socklab`` on PATH: scripting.md's in the
  page's working folder against the test lab, topologies.md's in a folder ``socklab
  init`` made, under a project and subnet of the test's own. A line that is not run is
  listed in NOT_RUN with the reason; a block that is not code (printed output), in
  NOT_CODE with how it is checked.

Nothing is skipped in silence: ``test_every_block_is_run_or_excused`` fails on a
block or line that no runner takes and no entry excuses.
"""

from __future__ import annotations

import doctest
import functools
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

import lab as socklab
from lab import api as lab_api
from lab.engine.compose import Compose
from lab.topology import Topology
from tests.docker.conftest import ENV, PROJECT, ROOT

PAGES = ("scripting", "topologies")
MY_HOST = "my-host.yaml"  # the page's whole host, which it says to save under this name
BIN = Path(sys.executable).parent  # where socklab is installed beside this Python
# The topologies' labs: a project and subnets of their own, beside the session's lab.
DOCS_PROJECT = f"{PROJECT}-docs"
DOCS_ENV = {
    **ENV,
    "LAB_NET_PREFIX": os.environ.get("LAB_TEST_DOCS_NET_PREFIX", "10.203.86"),
    "COMPOSE_PROJECT_NAME": DOCS_PROJECT,
}
# Lines of the pages' sh blocks that are not run here, and why.
EXTRA_HOST = (
    "examples/topologies/extra-host.yaml as its own lab: tests/docker/test_topologies.py "
    "brings that file up (project and subnet of its own) and runs status, send from the "
    "Docker host and from client, fuzz, chaos kill and restore, link loss and the "
    "schedule on it; here it would cost a second lab's start (minutes on 2 busy cores)"
)
ROUTER = (
    "examples/topologies/router/compose.yaml: its two networks are subnets another lab "
    "may hold; tests/docker/test_topologies.py brings it up on subnets of its own and runs "
    "status, ttl_across_router, dispatch and journey on it"
)
NOT_RUN: dict[str, str] = {
    **dict.fromkeys(
        [
            "socklab -f compose.yaml -f examples/topologies/extra-host.yaml up     "
            "# -f, as with Compose",
            "export COMPOSE_FILE=compose.yaml:examples/topologies/extra-host.yaml  "
            "# or once for all",
            "socklab status",
            "export COMPOSE_FILE=compose.yaml:examples/topologies/extra-host.yaml",
            "socklab up",
            "socklab status                                  # echohost, its processes, their ports",
            'socklab send echo-tcp "hello"                   # through its published port',
            'socklab send echo-udp "hello" --from client     # from inside the lab',
            "socklab fuzz echo-tcp echo-udp                  # does your server survive garbage?",
            "socklab chaos kill echo-tcp                     # what do its clients see?",
            "socklab link echohost loss 20%                  # a lossy link to echohost",
            "socklab chaos restore                           # echo-tcp started, the link clean again",
            "socklab run failures --schedule examples/schedules/extra-host.yaml --capture",
        ],
        EXTRA_HOST,
    ),
    **dict.fromkeys(
        [
            f"socklab -f examples/topologies/router/compose.yaml {rest}"
            for rest in (
                "up",
                "status",
                "send tcp-shout hello",
                "run examples/experiments/ttl_across_router.py",
                "run tcp-vs-udp --capture",
                "down",
            )
        ],
        ROUTER,
    ),
}
# Blocks that are not code: (page, first line) -> what they are and how they are checked.
NOT_CODE: dict[tuple[str, str], str] = {
    (
        "scripting",
        "socklab: experiments/half_close.py:31: NameError: name 'scritp' is not defined",
    ): (
        "what socklab prints for a mistake in an experiment file: "
        "test_a_mistake_in_the_tutorial_file_is_the_line_the_page_shows makes that mistake"
    ),
}


def shell_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment a reader's shell has, with the test's settings: `socklab` on PATH,
    and no COMPOSE_FILE of the caller's (an empty one is not "none" to Compose)."""
    env = {k: v for k, v in os.environ.items() if k != "COMPOSE_FILE"}
    return {**env, **extra, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of its first line of code, in the page
    lang: str
    text: str

    @property
    def first(self) -> str:
        return next((ln for ln in self.text.splitlines() if ln.strip()), "")

    @property
    def where(self) -> str:
        return f"docs/{self.page}.md:{self.line}"


def blocks(page: str) -> list[Block]:
    """The fenced code blocks of a page, in order."""
    found, lines = [], (ROOT / "docs" / f"{page}.md").read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang, start = lines[i][3:].strip(), i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
            found.append(Block(page, start + 1, lang, "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return found


def commands(block: Block) -> list[str]:
    """The command lines of an sh block (comments and blank lines dropped)."""
    return [ln.strip() for ln in block.text.splitlines() if ln.strip() and ln[:1] != "#"]


def test_every_block_is_run_or_excused() -> None:
    taken = {"python", "yaml", "sh"}
    loose = [
        b.where
        for p in PAGES
        for b in blocks(p)
        if b.lang not in taken and (p, b.first) not in NOT_CODE
    ]
    assert not loose, f"code blocks no runner takes and NOT_CODE does not excuse: {loose}"
    lines = {c for p in PAGES for b in blocks(p) if b.lang == "sh" for c in commands(b)}
    assert set(NOT_RUN) <= lines, (
        f"NOT_RUN names lines the pages no longer have: {set(NOT_RUN) - lines}"
    )
    ran = [b for b in blocks("topologies") if b.lang == "sh" and MY_HOST in b.text]
    assert len(ran) == 1, [b.where for b in ran]  # the one test_the_whole_host... runs
    unrun = [
        f"{b.where}: {c}"
        for b in blocks("topologies")
        if b.lang == "sh" and b not in ran
        for c in commands(b)
        if c not in NOT_RUN
    ]
    assert not unrun, f"lines no test runs and NOT_RUN does not excuse: {unrun}"
    excused = {first for _, first in NOT_CODE}
    firsts = {b.first for p in PAGES for b in blocks(p)}
    assert excused <= firsts, f"NOT_CODE names blocks the pages no longer have: {excused - firsts}"


# --- scripting.md -----------------------------------------------------------------------

EXPERIMENT_FILE = Path("experiments/half_close.py")  # where the page says to save it
PREDICTIONS_FILE = "ada.yaml"  # what the page's --predict reads


def tutorial_experiment() -> Block:
    return next(b for b in blocks("scripting") if b.first.startswith('"""half-close:'))


def test_the_tutorial_experiment_is_the_one_that_ships() -> None:
    """The page says the file "ships as examples/experiments/half_close.py": it does."""
    shipped = (ROOT / "examples/experiments/half_close.py").read_text()
    assert tutorial_experiment().text == shipped


def test_a_mistake_in_the_tutorial_file_is_the_line_the_page_shows(
    net: socklab.Lab, tmp_path: Path
) -> None:
    """The page's example of a mistake: `scritp` for `script`, on line 31 of its file."""
    lines = tutorial_experiment().text.splitlines()
    assert lines[30].strip() == 'c = script.tcp("c")', lines[30]
    lines[30] = lines[30].replace("script.tcp", "scritp.tcp")
    (tmp_path / "experiments").mkdir()
    (tmp_path / EXPERIMENT_FILE).write_text("\n".join(lines) + "\n")
    shown = next(first for (page, first) in NOT_CODE if page == "scripting")
    ran = subprocess.run(
        [str(BIN / "socklab"), "run", str(EXPERIMENT_FILE)],
        cwd=tmp_path,
        env=shell_env({**ENV, "COMPOSE_PROJECT_NAME": PROJECT}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode != 0
    assert shown in ran.stderr.splitlines(), ran.stderr


class AsOnThePage(doctest.OutputChecker):
    """The test lab's names read as the page's lab; times in ms compared as "a time"."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        return super().check_output(_page(want), _page(_ours(got)), optionflags)

    def output_difference(self, example: doctest.Example, got: str, optionflags: int) -> str:
        return super().output_difference(example, _ours(got), optionflags)


def _ours(got: str) -> str:
    prefix = ENV["LAB_NET_PREFIX"]
    return got.replace(f"{prefix}.", "10.203.0.").replace(f"<Lab {PROJECT}:", "<Lab socklab:")


def _page(text: str) -> str:
    return re.sub(r" *\d+\.\d+ ms", "   N ms", text)


def run_python(block: Block, globs: dict[str, Any]) -> None:
    """A REPL block as a doctest; any other block executed. Both in ``globs``."""
    if not block.first.startswith(">>>"):
        exec(compile(block.text, block.where, "exec"), globs)
        return
    test = doctest.DocTestParser().get_doctest(block.text, globs, block.where, block.where, 0)
    runner = doctest.DocTestRunner(checker=AsOnThePage(), optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    runner.run(test, out=report.write, clear_globs=False)
    globs.update(test.globs)
    assert runner.failures == 0, f"{block.where}:\n{report.getvalue()}"


def run_sh(block: Block, cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    """The block's lines not in NOT_RUN, in one shell (an `export` holds for the next
    lines), stopping at the first that fails; what they printed."""
    script = ["set -e"]
    for line in commands(block):
        if line not in NOT_RUN:
            script += [f"echo {json.dumps('+ ' + line)} >&2", line]
    ran = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=cwd,
        env=shell_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert ran.returncode == 0, f"{block.where}: exit {ran.returncode}\n{ran.stderr[-3000:]}"
    return ran.stdout


@pytest.fixture
def as_the_test_lab(docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lab.open()` and `lab.started()` as a page calls them, opening the test lab."""
    opened = functools.partial(lab_api.open, ROOT, project=PROJECT, env=ENV, client=docker_client)
    started = functools.partial(lab_api.started, ROOT, project=PROJECT, env=ENV)
    monkeypatch.setattr(socklab, "open", opened)
    monkeypatch.setattr(socklab, "started", started)


def test_scripting_md_runs_against_the_lab(
    net: socklab.Lab,
    as_the_test_lab: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net.restore()  # whatever an earlier test left, the page starts from a healthy lab
    monkeypatch.chdir(tmp_path)
    globs: dict[str, Any] = {"__name__": "__docs__"}
    sh_env = {**ENV, "COMPOSE_PROJECT_NAME": PROJECT}
    for block in blocks("scripting"):
        if block == tutorial_experiment():
            EXPERIMENT_FILE.parent.mkdir(exist_ok=True)
            EXPERIMENT_FILE.write_text(block.text)  # "save this as experiments/half_close.py"
        elif block.lang == "python":
            run_python(block, globs)
        elif block.lang == "yaml":
            assert yaml.safe_load(block.text)["experiment"] == "half-close", block.where
            Path(PREDICTIONS_FILE).write_text(block.text)
        elif block.lang == "sh":
            run_sh(block, tmp_path, sh_env)
    assert sorted(p.name for p in Path("results").glob("half-close-*.json")), "no result saved"


# --- topologies.md ----------------------------------------------------------------------


def override_name(block: Block) -> str:
    """The file a yaml block says it is (`# my-host.yaml: ...`), else one named by its line."""
    m = re.match(r"#\s*([\w.-]+\.yaml)\b", block.first)
    return m.group(1) if m else f"block-{block.line}.yaml"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the lab, as `socklab init DIR` writes one, holding the page's files."""
    made = tmp_path_factory.mktemp("docs-lab")
    ran = subprocess.run(
        [str(BIN / "socklab"), "init", str(made)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    for block in blocks("topologies"):
        if block.lang == "yaml":
            (made / override_name(block)).write_text(block.text)
    return made


def resolve(folder: Path, *files: str, env: dict[str, str] | None = None) -> Topology:
    """What the lab reads: Compose's resolution of the files, then the topology loader."""
    compose = Compose(folder, DOCS_PROJECT, tuple(Path(f) for f in files), env or DOCS_ENV)
    return compose.topology()


def test_every_yaml_block_of_topologies_md_is_an_override_the_lab_reads(folder: Path) -> None:
    for block in (b for b in blocks("topologies") if b.lang == "yaml"):
        name = override_name(block)
        files = ("compose.yaml", *([MY_HOST] if name != MY_HOST else []), name)
        topology = resolve(folder, *files)
        extension = (yaml.safe_load(block.text) or {}).get("x-socklab")
        if extension is not None:  # the last file's x-socklab is read whole, not merged
            assert topology.shortcuts == extension["shortcuts"], block.where
        for service in (yaml.safe_load(block.text) or {}).get("services") or {}:
            assert service in topology.services, (block.where, service)


def test_the_whole_host_is_what_the_page_says(folder: Path) -> None:
    topology = resolve(folder, "compose.yaml", MY_HOST)
    host = topology.hosts["myhost"]
    assert host.ip == f"{DOCS_ENV['LAB_NET_PREFIX']}.30"
    assert [i.network for i in host.interfaces] == ["labnet"]
    assert set(host.processes) == {"my-tcp", "my-udp"}
    assert [str(p) for p in topology.processes["my-tcp"].ports] == ["7000/tcp echo"]
    # under a named lab's prefix, the address moves with it
    moved = resolve(folder, "compose.yaml", MY_HOST, env={**DOCS_ENV, "LAB_NET_PREFIX": "10.210.3"})
    assert moved.hosts["myhost"].ip == "10.210.3.30"


def test_an_override_cannot_use_an_anchor_of_compose_yaml(folder: Path) -> None:
    (folder / "anchored.yaml").write_text(
        "services:\n  mine:\n    <<: *image\n    network_mode: service:client\n"
        "    pid: service:client\n"
    )
    done = subprocess.run(
        ["docker", "compose", "-f", "compose.yaml", "-f", "anchored.yaml", "config", "-q"],
        cwd=folder,
        env=shell_env(DOCS_ENV),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "unknown anchor 'image'" in done.stderr, done.stderr


def test_relative_paths_are_from_the_first_files_folder(folder: Path) -> None:
    """my-host.yaml moved into a subfolder still mounts ./examples/... from beside
    compose.yaml: Compose's project directory is the first -f file's folder."""
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / MY_HOST).write_text((folder / MY_HOST).read_text())
    compose = Compose(folder, DOCS_PROJECT, (Path("compose.yaml"), Path("sub") / MY_HOST), DOCS_ENV)
    volumes = compose.config()["services"]["my-tcp"]["volumes"]
    assert [v["source"] for v in volumes] == [str(folder / "examples/servers/echo.py")]


@pytest.fixture
def docs_lab(folder: Path, docker_client: docker.DockerClient) -> Iterator[Path]:
    """The topologies' labs run under DOCS_PROJECT; none is left behind."""
    gone = socklab.open(folder, project=DOCS_PROJECT, env=DOCS_ENV, client=docker_client)
    gone.down()
    yield folder
    gone.down()
    assert not gone.backend.owned(), f"left behind: {gone.backend.owned()}"


def test_the_whole_host_comes_up_and_answers(
    docs_lab: Path, docker_client: docker.DockerClient
) -> None:
    my_host = next(b for b in blocks("topologies") if b.lang == "sh" and MY_HOST in b.text)
    shown = run_sh(my_host, docs_lab, DOCS_ENV)
    assert "myhost" in shown
    net = socklab.open(
        docs_lab,
        files=("compose.yaml", MY_HOST, "shortcuts.yaml"),
        project=DOCS_PROJECT,
        env=DOCS_ENV,
        client=docker_client,
    )
    assert net.send("mine", "hello").reply == "hello"  # the shortcut the page adds
    assert net.send("my-udp", "hello").reply == "hello"
    assert net.send("my-tcp", "hi", origin="docker-host").reply == "hi"  # published by Docker
    # no LAB_SERVICE in either process: the port table names them by their containers
    owners = {(e.port, e.protocol): e.service for e in net.host("myhost").port_table()}
    assert owners[(7000, "tcp")] == "my-tcp", owners
    assert owners[(7001, "udp")] == "my-udp", owners
