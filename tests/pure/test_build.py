"""When `lab up` may skip `docker compose build`: the fingerprint of what a build reads."""

from __future__ import annotations

from pathlib import Path

from lab.engine.build import LABEL, fingerprint, up_to_date
from lab.topology.model import Build


def _context(tmp_path: Path) -> Build:
    (tmp_path / "servers").mkdir(parents=True)
    (tmp_path / "Dockerfile").write_text("FROM base\n")
    (tmp_path / "servers" / "x.py").write_text("print(1)\n")
    return Build("apphost", "img:latest", str(tmp_path), "Dockerfile", {"BASE": "base:1"})


def ids(name: str) -> str:
    return {"base:1": "sha256:aaa"}.get(name, "")


def test_the_fingerprint_follows_every_file_and_the_base(tmp_path: Path) -> None:
    build = _context(tmp_path)
    first = fingerprint([build], ids, "base:1")
    assert first == fingerprint([build], ids, "base:1")  # stable
    (tmp_path / "servers" / "__pycache__").mkdir()
    (tmp_path / "servers" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\x00")
    assert fingerprint([build], ids, "base:1") == first  # never part of an image
    (tmp_path / "servers" / "x.py").write_text("print(2)\n")
    changed = fingerprint([build], ids, "base:1")
    assert changed != first
    assert fingerprint([build], lambda _: "sha256:bbb", "base:1") != changed  # base rebuilt
    (tmp_path / "servers" / "new.py").write_text("")
    assert fingerprint([build], ids, "base:1") != changed


def test_a_dockerfile_outside_the_context_is_followed_too(tmp_path: Path) -> None:
    build = _context(tmp_path / "ctx")
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM base\n")
    moved = Build(build.service, build.image, build.context, str(outside), build.args)
    first = fingerprint([moved], ids, "base:1")
    outside.write_text("FROM base\nRUN true\n")
    assert fingerprint([moved], ids, "base:1") != first


def test_a_context_it_cannot_read_means_build(tmp_path: Path) -> None:
    remote = Build("a", "i", "https://example.invalid/repo.git", "Dockerfile")
    assert fingerprint([remote], ids, "base:1") == ""
    local = _context(tmp_path)
    staged = Build(local.service, local.image, local.context, "Dockerfile", opaque=("target",))
    assert fingerprint([staged], ids, "base:1") == ""
    assert not up_to_date([remote], lambda _: {LABEL: ""}, "")


def test_up_to_date_needs_every_image_to_carry_the_mark(tmp_path: Path) -> None:
    builds = [_context(tmp_path), Build("b", "other:latest", str(tmp_path), "Dockerfile")]
    labels = {"img:latest": {LABEL: "m1"}, "other:latest": {LABEL: "m1"}}
    assert up_to_date(builds, lambda name: labels.get(name, {}), "m1")
    assert not up_to_date(builds, lambda name: labels.get(name, {}), "m2")
    del labels["other:latest"]
    assert not up_to_date(builds, lambda name: labels.get(name, {}), "m1")
