"""The lab the package carries, and `init`: what a copy holds, and that it is its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from lab import bundle
from lab.api import workdir_for
from lab.errors import UsageError


def test_the_package_carries_a_whole_lab() -> None:
    assert bundle.TOPOLOGY.is_file()
    assert (bundle.ROOT / "services/Dockerfile").is_file()
    assert (bundle.ROOT / "examples/topologies/extra-host.yaml").is_file()
    topology = yaml.safe_load(bundle.TOPOLOGY.read_text())
    assert topology["services"]["apphost"]["build"]["context"] == "./services"


def test_init_copies_the_lab_as_a_project_of_its_own(tmp_path: Path) -> None:
    (bundle.ROOT / "services/__pycache__").mkdir(exist_ok=True)  # as any import leaves
    written = bundle.init(tmp_path / "My Lab")
    folder = tmp_path / "My Lab"
    assert [p.name for p in written] == ["compose.yaml", "services", "examples"]
    assert not list(folder.rglob("__pycache__"))
    assert (folder / "services/servers/tcp_shout.py").read_bytes() == (
        bundle.ROOT / "services/servers/tcp_shout.py"
    ).read_bytes()
    topology = yaml.safe_load((folder / "compose.yaml").read_text())
    assert topology["name"] == "mylab"
    assert topology["x-image"]["image"] == "${LAB_SERVICES_IMAGE:-mylab-services:latest}"
    extra = yaml.safe_load((folder / "examples/topologies/extra-host.yaml").read_text())
    assert extra["services"]["echohost"]["image"] == "mylab-services:latest"
    assert (
        "socklab-services" not in (folder / "examples/topologies/router/compose.yaml").read_text()
    )


def test_init_never_writes_over_a_lab(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("name: mine\n")
    with pytest.raises(UsageError, match=r"already holds compose\.yaml"):
        bundle.init(tmp_path)
    assert (tmp_path / "compose.yaml").read_text() == "name: mine\n"
    assert not (tmp_path / "services").exists()


@pytest.mark.parametrize(
    ("folder", "project"),
    [("mylab", "mylab"), ("My Lab", "mylab"), ("_ada.2026", "ada2026"), ("---", "socklab")],
)
def test_a_copy_is_named_as_compose_names_projects(folder: str, project: str) -> None:
    assert bundle.project_name(Path("/x") / folder) == project


def test_the_default_lab_is_used_only_where_there_are_no_compose_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMPOSE_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert workdir_for() == bundle.ROOT
    assert bundle.is_builtin(workdir_for())
    assert workdir_for([Path("other.yaml")]) == tmp_path  # -f wins
    monkeypatch.setenv("COMPOSE_FILE", "x.yaml")
    assert workdir_for() == tmp_path  # COMPOSE_FILE wins
    monkeypatch.delenv("COMPOSE_FILE")
    (tmp_path / "compose.yaml").write_text("name: mine\n")
    assert workdir_for() == tmp_path  # a compose.yaml here wins
    assert not bundle.is_builtin(tmp_path)
    assert os.path.samefile(bundle.ROOT / "compose.yaml", bundle.TOPOLOGY)
