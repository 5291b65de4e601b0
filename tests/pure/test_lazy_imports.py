"""The command line starts fast: building its parser and printing --help load no Docker
SDK, HTTP stack, schema checker, YAML reader, rich, plotting or experiment; each command
imports what it uses when it runs (lab/cli/__init__.py). Each check runs in a fresh
interpreter, since this one has long since imported everything."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lab
from lab import cli
from lab.cli.commands import experiments

# What no parser may load: each is tens of milliseconds, or pulls in what is.
HEAVY = (
    "docker",
    "requests",
    "aiohttp",
    "jsonschema",
    "yaml",
    "rich",
    "matplotlib",
    "asyncio",
    "lab.api",
    "lab.experiments",
    "lab.backends",
)


def loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    modules = json.loads(out.splitlines()[-1])
    return [m for m in HEAVY if m in modules]


def test_help_loads_no_heavy_module() -> None:
    code = (
        "import contextlib, io, lab.cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    lab.cli.main(['--help'])"
    )
    assert loaded_after(code) == []


def test_import_lab_loads_the_api_on_first_use() -> None:
    assert loaded_after("import lab") == []
    assert "lab.api" in str(loaded_after("import lab; lab.open"))


def test_every_public_name_resolves() -> None:
    assert sorted(lab.__all__) == sorted(lab._HOMES)
    for name in lab.__all__:
        assert getattr(lab, name) is not None
    assert lab.run.__name__ == "run_experiment"
    assert lab.load_experiment.__name__ == "load"
    assert set(lab.__all__) <= set(dir(lab))
    with pytest.raises(AttributeError):
        lab.__getattr__("no_such_name")


def test_names_written_out_for_speed_match_their_homes() -> None:
    from lab.cli import context
    from lab.experiments import files
    from lab.names import NAME_ENV

    # One home now (lab.names): the CLI opens the lab by the name its help gives.
    assert vars(cli)["NAME_ENV"] == vars(context)["NAME_ENV"] == NAME_ENV
    commands = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert isinstance(commands.choices, dict)
    status = commands.choices["status"]
    assert any(f"${NAME_ENV}" in (a.help or "") for a in status._actions)
    assert (experiments.FOLDER, experiments.FOLDER_ENV) == (files.DEFAULT_FOLDER, files.FOLDER_ENV)


def test_the_error_boundary_still_names_docker_errors() -> None:
    import docker.errors
    import requests

    assert cli.engine_failure(ValueError("a bug")) is None
    line, code = cli.engine_failure(docker.errors.DockerException("no such image")) or ("", 0)
    assert line == "Docker said: no such image"
    assert code == lab.ExitCode.ERROR
    lost = cli.engine_failure(requests.ConnectionError("reset by peer"))
    assert lost is not None
    assert lost[1] == lab.ExitCode.NO_DOCKER


def test_a_mistyped_chaos_action_is_a_usage_error_with_the_list() -> None:
    import argparse

    from lab.cli.commands import chaos
    from lab.cli.context import Invocation
    from lab.errors import UsageError

    args = argparse.Namespace(action="kil", target="db")
    with pytest.raises(UsageError, match="no chaos action 'kil'") as raised:
        chaos.cmd_chaos(Invocation(args), args)
    assert "one of: kill, stop" in raised.value.line()


def test_the_chaos_help_names_every_fault_it_takes() -> None:
    from lab.chaos.faults import KINDS

    commands = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert isinstance(commands.choices, dict)
    action = next(a for a in commands.choices["chaos"]._actions if a.dest == "action")
    assert all(kind in (action.help or "") for kind in (*KINDS, "restore"))
