"""Lab scripts and experiment files, as docs/scripting.md teaches them: the example files run
with `lab run`, the tutorial's experiment runs from a plain Python session too, results
validate, and a mistake in a file is one line naming the file and the line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

import lab as socklab
from tests.docker.conftest import ENV, PROJECT, ROOT, run_lab_cli

SCHEMA = json.loads((ROOT / "lab/experiments/result.schema.json").read_text())
EXAMPLES = ROOT / "examples" / "experiments"


@pytest.mark.parametrize("name", ["half_close.py", "frozen_listener.py", "udp_queue_overflow.py"])
def test_example_experiment_files_run_and_every_claim_holds(
    net: socklab.Lab, name: str, tmp_path: Path
) -> None:
    ran = run_lab_cli(
        "-p", PROJECT, "run", str(EXAMPLES / name), "--results", str(tmp_path), timeout=600
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr
    (path,) = tmp_path.glob("*.json")
    result = json.loads(path.read_text())
    jsonschema.validate(result, SCHEMA)
    assert result["passed"] is True
    assert result["checks"]


def test_the_tutorial_runs_from_a_plain_python_session(net: socklab.Lab, tmp_path: Path) -> None:
    """What a notebook cell does: open the lab, load the file, run, print, save."""
    session = textwrap.dedent(
        f"""
        from pathlib import Path
        import lab

        net = lab.open({str(ROOT)!r}, project={PROJECT!r})
        print(net)
        experiment = lab.load_experiment(Path({str(EXAMPLES / "half_close.py")!r}))
        result = lab.run(experiment, net)
        print(result)
        print(result._repr_html_()[:30])
        print("saved", result.save({str(tmp_path)!r}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", session],
        cwd=tmp_path,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "<Lab socklab-test: hosts apphost, client, shouthost" in done.stdout
    assert "half-close: 3 of 3 claims held (passed" in done.stdout
    assert "<p><b>half-close</b>" in done.stdout
    (path,) = tmp_path.glob("half-close-*.json")
    jsonschema.validate(json.loads(path.read_text()), SCHEMA)


def test_the_tutorial_shows_the_shipped_file_verbatim() -> None:
    guide = (ROOT / "docs" / "scripting.md").read_text()
    assert (EXAMPLES / "half_close.py").read_text().strip() in guide


def test_lab_list_shows_the_experiments_folder(tmp_path: Path) -> None:
    listed = run_lab_cli("list", env={"LAB_EXPERIMENTS": str(EXAMPLES)})
    assert listed.returncode == 0, listed.stderr
    for name in ("half-close", "frozen-listener", "udp-queue-overflow", "ttl-across-router"):
        assert name in listed.stdout
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "broken.py").write_text("import lab\n\nx = 1 +\n")
    here = run_lab_cli("list", cwd=tmp_path)
    assert here.returncode == 0
    assert "cannot load" in here.stdout
    assert "broken.py:3" in here.stdout


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("import lab\n\nx = 1 +\n", "mine.py:3: invalid syntax"),
        ("import lab\nimport no_such_module\n", "mine.py:2: ModuleNotFoundError"),
        ("import lab\n", "expected one lab.Experiment subclass"),
        (
            textwrap.dedent(
                """
                import lab

                class Mine(lab.Experiment):
                    name = "mine"
                    question = "Does a bug in run become one line?"
                    claims = (lab.Claim("x", "x"),)

                    def run(self, ctx: lab.Context) -> None:
                        ctx.facts["x"] = 1 / 0

                    def judge(self, seen: lab.Observations) -> lab.Verdicts:
                        return lab.Verdicts()
                """
            ),
            "mine.py:10: ZeroDivisionError: division by zero",
        ),
    ],
)
def test_a_mistake_in_an_experiment_file_is_one_line_with_file_and_line(
    net: socklab.Lab, tmp_path: Path, source: str, where: str
) -> None:
    path = tmp_path / "mine.py"
    path.write_text(source)
    ran = run_lab_cli("-p", PROJECT, "run", str(path), "--results", str(tmp_path))
    assert ran.returncode == 2, ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert where in line
    assert "Traceback" not in ran.stderr
