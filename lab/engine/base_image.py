"""The Python base image the services are built on.

Two paths, one Dockerfile (its ``BASE`` build argument):
  official  ``python:3.12-slim`` where it is present or a registry can be reached;
  local     an image built here from Debian's packages (debootstrap, then an
            import into Docker), for machines that reach no container registry.
``LAB_BASE_IMAGE`` in the environment overrides both. The choice is written to
``.env`` so that a plain ``docker compose up`` builds on the same base.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from lab.errors import BaseImageError
from lab.names import BASE_REPOSITORY, PROJECT, label
from lab.progress import Progress

log = logging.getLogger("lab")
OFFICIAL = "python:3.12-slim"
SUITE = "bookworm"
# debootstrap takes a minute or two; a stalled download must end with a reason, not hang.
DEBOOTSTRAP_TIMEOUT = 1800.0  # seconds in all
DEBOOTSTRAP_SILENCE = 300.0  # seconds without a line of output
# python3 for the services; the rest are real clients and tools for the
# workbench (curl, redis-cli, nc, ss, ip, ping, tcpdump).
PACKAGES = (
    "python3",
    "iproute2",
    "procps",
    "curl",
    "redis-tools",
    "netcat-openbsd",
    "iputils-ping",
    "tcpdump",  # `--capture`: runs in a helper that shares a host's network namespace
    "iptables",  # `lab link HOST loss`: the statistic match, from the same kind of helper
    "redis-server",  # the real peer that `lab bench redis` measures db against
    "socat",  # the UDP echo that `lab bench udp` measures udp-shout against
    "strace",  # `lab trace`: runs in a helper that shares a host's PID namespace
)
LOCAL_REPOSITORY = BASE_REPOSITORY
ENV_KEY = "LAB_BASE_IMAGE"
BASE_LABEL = label("base")  # on each service image: the base it was built on (Dockerfile)


def local_tag(packages: Iterable[str] = PACKAGES, suite: str = SUITE) -> str:
    """A tag that changes whenever the package list does, so a stale base is never reused."""
    digest = hashlib.sha256(" ".join(sorted(packages)).encode()).hexdigest()[:8]
    return f"{LOCAL_REPOSITORY}:{suite}-{digest}"


@dataclass(frozen=True)
class Plan:
    image: str
    action: str  # "use" (present, or just pulled) or "build"
    path: str  # "override", "official" or "local"


def plan(
    override: str | None,
    present: Callable[[str], bool],
    pull: Callable[[str], bool],
    local: str,
) -> Plan:
    """Decide which base to use. ``present`` and ``pull`` (True once pulled) are tried in order."""
    if override:
        if present(override) or pull(override):
            return Plan(override, "use", "override")
        raise BaseImageError(
            f"{ENV_KEY}={override} is neither present nor pullable",
            "unset it to let the lab choose, or name an image that exists",
        )
    if present(OFFICIAL) or pull(OFFICIAL):
        return Plan(OFFICIAL, "use", "official")
    if present(local):
        return Plan(local, "use", "local")
    return Plan(local, "build", "local")


_DEB_LINE = re.compile(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)")


def debian_mirror(source_texts: Iterable[str]) -> str | None:
    """The first Debian archive URI in apt's sources (one-line or deb822 form).

    Security and third-party repositories are skipped: the base needs the main archive.
    """
    for text in source_texts:
        stanza_uris: list[str] = []
        for line in [*text.splitlines(), ""]:
            match = _DEB_LINE.match(line)
            if match and _is_debian_archive(match.group(1)):
                return match.group(1)
            if line.strip().startswith("URIs:"):
                stanza_uris = line.split(":", 1)[1].split()
            if line.strip().startswith("Suites:") and stanza_uris:
                suites = line.split(":", 1)[1].split()
                if not any("security" in s for s in suites):
                    for uri in stanza_uris:
                        if _is_debian_archive(uri):
                            return uri
            if not line.strip():
                stanza_uris = []
    return None


def _is_debian_archive(uri: str) -> bool:
    return "/debian" in uri and "security" not in uri and "debian-" not in uri.rsplit("/", 1)[-1]


def read_apt_sources(root: Path = Path("/etc/apt")) -> list[str]:
    files = [root / "sources.list", *sorted((root / "sources.list.d").glob("*"))]
    return [f.read_text(errors="replace") for f in files if f.is_file()]


# --- doing it -------------------------------------------------------------------


def ensure(client: docker.DockerClient, project_dir: Path | None, progress: Progress) -> Plan:
    """Make sure a base image exists; record the choice in ``project_dir``'s .env (None:
    nowhere, as for the lab the package carries); return the plan carried out."""
    chosen = plan(
        os.environ.get(ENV_KEY),
        lambda name: _present(client, name),
        lambda name: _pull(client, name, progress),
        local_tag(),
    )
    if chosen.action == "build":
        build_local(client, chosen.image, progress)
        remove_stale_local_bases(client, keep=chosen.image, progress=progress)
    if project_dir is not None:
        try:
            write_env(project_dir / ".env", ENV_KEY, chosen.image)
        except OSError as exc:  # a folder not ours to write: the driver passes it on anyway
            log.info("base image not recorded in %s: %s", project_dir / ".env", exc.strerror)
    return chosen


def remove_stale_local_bases(
    client: docker.DockerClient, keep: str, progress: Progress, repository: str = LOCAL_REPOSITORY
) -> None:
    """Local bases built for an older package list: a few hundred MB each. One that a
    service image still names in its ``socklab.base`` label stays (another checkout of the
    lab on this machine, on another branch, still builds on it)."""
    named = {
        str(image.labels.get(BASE_LABEL))
        for image in client.images.list(filters={"label": BASE_LABEL})
    }
    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag != keep and tag not in named:
                try:
                    client.images.remove(tag)  # never forced: one still in use stays
                    progress(f"removed the outdated base {tag}")
                except docker.errors.APIError:
                    pass


def _present(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def _pull(client: docker.DockerClient, name: str, progress: Progress) -> bool:
    progress(f"trying to pull {name}")
    repository, _, tag = name.partition(":")
    try:
        client.images.pull(repository, tag=tag or "latest")
        return True
    except docker.errors.APIError:
        return False  # offline, or no such image: fall through to the next path


def build_local(client: docker.DockerClient, tag: str, progress: Progress) -> None:
    """debootstrap a minimal Debian with python3 and import it as ``tag`` (about a minute)."""
    build_debian_image(client, tag, PACKAGES, ['CMD ["python3"]'], progress)


def build_debian_image(
    client: docker.DockerClient,
    tag: str,
    packages: Iterable[str],
    changes: list[str],
    progress: Progress,
) -> None:
    """debootstrap a minimal Debian with ``packages`` and import it as ``tag``
    (``changes``: Dockerfile instructions for the import, as ``docker import -c``)."""
    if os.geteuid() != 0:  # debootstrap makes device nodes and chroots: root's alone
        raise BaseImageError(
            f"no Python base image is here ({OFFICIAL} cannot be pulled), and building "
            f"{tag} from Debian's packages needs root (debootstrap)",
            f"have root run `socklab up` once, or `docker load` {OFFICIAL}, or set "
            f"{ENV_KEY} to any image with python3 >= 3.11 (docs/install.md)",
        )
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise BaseImageError(
            "no Python base image is available and debootstrap is not installed",
            "run `make setup` (as root) to install it, or set LAB_BASE_IMAGE",
        )
    mirror = os.environ.get("LAB_DEBIAN_MIRROR") or debian_mirror(read_apt_sources())
    if mirror is None:
        raise BaseImageError(
            "no Debian mirror found in /etc/apt/sources.list*", "set LAB_DEBIAN_MIRROR to one"
        )
    with tempfile.TemporaryDirectory(prefix=f"{PROJECT}-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(packages)}",
            SUITE,
            str(rootfs),
            mirror,
        ]
        progress(f"building {tag} from Debian packages (debootstrap, a minute or more)")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        try:
            for line in lines_until(proc, DEBOOTSTRAP_TIMEOUT, DEBOOTSTRAP_SILENCE):
                lines.append(line.rstrip())
                progress(f"debootstrap: {line.strip()[:70]}", detail=True)
        except TimeoutError as exc:
            raise BaseImageError(
                f"debootstrap {exc} (last: {lines[-1] if lines else 'no output'})",
                "check that this machine reaches Debian's package archive, or set "
                "LAB_DEBIAN_MIRROR to a nearer one",
            ) from None
        if proc.wait() != 0:
            raise BaseImageError(
                f"debootstrap failed: {lines[-1] if lines else 'no output'}",
                "check that this machine reaches Debian's package archive",
            )
        progress(f"importing {tag} into Docker")
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        repository, _, version = tag.partition(":")
        client.api.import_image(
            src=str(archive),
            repository=repository,
            tag=version,
            changes=[
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                *changes,
            ],
        )
    if not _present(client, tag):
        raise BaseImageError(f"importing {tag} into Docker left no image")


def lines_until(proc: subprocess.Popen[str], deadline: float, silence: float) -> Iterator[str]:
    """A child's output lines as they come, to a deadline: TimeoutError (the child killed)
    when it runs past ``deadline`` seconds in all or says nothing for ``silence``. A
    plain ``for line in proc.stdout`` would wait for ever on a child that hangs."""
    assert proc.stdout is not None
    stream = proc.stdout
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    end = time.monotonic() + deadline
    while True:
        wait = min(silence, end - time.monotonic())
        try:
            line = lines.get(timeout=max(0.0, wait))
        except queue.Empty:
            proc.kill()
            proc.wait()
            said = (
                f"ran past {deadline:g} s" if wait < silence else f"said nothing for {silence:g} s"
            )
            raise TimeoutError(said) from None
        if line is None:
            return
        yield line


def write_env(path: Path, key: str, value: str) -> None:
    """Set one KEY=VALUE in a .env file, keeping every other line as it was."""
    text = path.read_text() if path.exists() else ""
    if f"{key}={value}" in (line.strip() for line in text.splitlines()):
        return
    kept = [line for line in text.splitlines() if not line.strip().startswith(f"{key}=")]
    path.write_text("\n".join([*kept, f"{key}={value}"]) + "\n")
