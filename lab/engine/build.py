"""Whether the images Compose builds are already built from exactly these files.

`docker compose build` with a warm cache still takes about half a second here (it
sends the context and checks every step), and `lab up` waits for it. Instead the
driver fingerprints what a build reads (the Dockerfile, every file of the context,
the build arguments, the base image's id) and builds only when no image carries
that fingerprint in its ``socklab.build`` label. The label is declared in compose.yaml
(``build.labels``, from ``LAB_BUILD_FINGERPRINT``), so a plain `docker compose
build` leaves it empty and the next `lab up` builds again: never a stale image.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from lab.names import label
from lab.topology.model import Build

LABEL = label("build")
ENV_KEY = "LAB_BUILD_FINGERPRINT"
SKIPPED = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}  # never in an image


def fingerprint(builds: Iterable[Build], image_id: Callable[[str], str], base: str) -> str:
    """One digest of everything the builds read, ``base`` (the base image `lab up` chose)
    included; "" when it cannot be known (a context that is a URL, or a build using what
    the digest does not follow: see ``Build.opaque``): then the caller builds, as Compose
    would. Every file of the context counts, even those a .dockerignore leaves out (its
    rules are not re-implemented here), and the Dockerfile's own text wherever it is: a
    change costs at worst a needless build."""
    digest = hashlib.sha256(f"{base}\0{image_id(base)}\0".encode())
    for build in sorted(builds, key=lambda b: b.service):
        context = Path(build.context)
        dockerfile = context / build.dockerfile  # (an absolute path stays itself)
        if "://" in build.context or not context.is_dir() or build.opaque:
            return ""
        if not dockerfile.is_file():
            return ""
        digest.update(f"{build.service}\0{build.image}\0{build.dockerfile}\0".encode())
        digest.update(hashlib.sha256(dockerfile.read_bytes()).digest())
        for key, value in sorted(build.args.items()):
            # A base image is named by a tag that a rebuild moves: its id is what counts.
            digest.update(f"{key}={value}\0{image_id(value)}\0".encode())
        for path in _files(context):
            digest.update(str(path.relative_to(context)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _files(context: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(context):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED)
        found += [Path(folder) / f for f in sorted(files) if not f.endswith(".pyc")]
    return found


def up_to_date(
    builds: Iterable[Build], labels_of: Callable[[str], dict[str, str]], mark: str
) -> bool:
    """Every built image exists and carries ``mark`` (``labels_of`` gives an image's labels,
    or {} when there is no such image)."""
    return bool(mark) and all(labels_of(b.image).get(LABEL) == mark for b in builds)
