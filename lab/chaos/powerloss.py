"""A disk that can lose power, and a db on it: what fsync buys, shown rather than asserted.

``volatile_disk`` mounts ``lab.chaos.lazyfs`` on the Docker host (FUSE, as root),
for the length of a block, and removes it however the block ends. ``db_on``
starts a copy of the lab's db process on it: the same image and program, in
the db's host's namespaces (so it answers on that host's address, on its own
port), hardened like every process (uid 10001, read-only root, no capability),
its /data on the volatile disk. ``power_cut`` is what a power cut does to a
machine: the process dies, and every byte it wrote but did not fsync is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from lab.backends.engine import Engine
from lab.engine import helpers
from lab.errors import ExperimentError
from lab.interrupts import ctrl_c_ignored
from lab.waiting import wait_until

MOUNT_TIMEOUT = 15.0


@dataclass
class VolatileDisk:
    mount: Path
    control: Path

    def _ask(self, command: str) -> dict[str, int]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.control))
            s.sendall(command.encode() + b"\n")
            answer: dict[str, int] = json.loads(s.makefile().readline())
        return answer

    def drop(self) -> int:
        """The power goes: every unsynced byte is lost. How many there were."""
        return int(self._ask("drop")["lost_bytes"])

    def stats(self) -> dict[str, int]:
        """fsyncs received, unsynced bytes waiting, bytes lost so far."""
        return self._ask("stats")


def check_possible(backend: Engine | None = None) -> None:
    """One clear line if this machine cannot mount the filesystem, or if ``backend``'s
    engine would not see the mount (a driver in a container, or on another machine)."""
    if backend is not None and not backend.beside_engine():
        raise ExperimentError(
            "the power-loss rows mount a FUSE filesystem where the Docker Engine runs, and "
            "this driver is not on that machine (a container, or a remote engine)",
            "run db-kill from the Docker host itself, as root (docs/install.md)",
        )
    if os.geteuid() != 0:
        raise ExperimentError(
            "the power-loss rows mount a FUSE filesystem on the Docker host: run as root"
        )
    if not Path("/dev/fuse").exists():
        raise ExperimentError("the power-loss rows need /dev/fuse (FUSE), which is missing")
    if shutil.which("fusermount3") is None:
        raise ExperimentError(
            "the power-loss rows need fusermount3", "install Debian's fuse3 (`make setup` does)"
        )


@contextmanager
def volatile_disk(project: str, parent: Path | None = None) -> Iterator[VolatileDisk]:
    """``parent``: where the disk's folder is made (default: the temporary folder); in a
    lab across machines, a folder the db's machine sees too."""
    check_possible()
    root = Path(tempfile.mkdtemp(prefix=f"{project}-volatile-disk-", dir=parent))
    (root / "backing").mkdir()
    (root / "mnt").mkdir()
    disk = VolatileDisk(root / "mnt", root / "control.sock")
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.chaos.lazyfs",
            str(root / "backing"),
            str(disk.mount),
            str(disk.control),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the driver, which unmounts in order
    )
    try:

        def mounted() -> bool:
            if daemon.poll() is not None:
                said = daemon.stderr.read().strip() if daemon.stderr else ""
                raise ExperimentError(f"the volatile disk did not mount: {said or 'no reason'}")
            return os.path.ismount(disk.mount) and disk.control.exists()

        wait_until(mounted, MOUNT_TIMEOUT, "the volatile disk to be mounted")
        yield disk
    finally:
        with ctrl_c_ignored():
            unmount(disk.mount)
            with suppress(ProcessLookupError):
                daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=10)
            shutil.rmtree(root, ignore_errors=True)


def unmount(mount: Path) -> bool:
    """Detach a volatile disk lazily; False if fusermount3 failed or took over 30 s (a
    wedged FUSE daemon must not hang the clean-up: the daemon is stopped after this)."""
    with suppress(subprocess.TimeoutExpired):
        done = subprocess.run(
            ["fusermount3", "-u", "-z", str(mount)], check=False, capture_output=True, timeout=30
        )
        return done.returncode == 0
    return False


def sweep(project: str, parent: Path | None = None) -> list[str]:
    """Unmount and remove any volatile disk of this project left by a driver that was killed
    outright (a Ctrl-C unmounts in order; a SIGKILL cannot). `lab down` calls this."""
    prefix = f"/{project}-volatile-disk-"
    removed = []
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    for line in mounts:
        fields = line.split()
        ours = len(fields) > 2 and fields[2].startswith("fuse") and prefix in fields[1]
        if ours and unmount(Path(fields[1])):
            shutil.rmtree(Path(fields[1]).parent, ignore_errors=True)
            removed.append(fields[1])
    for leftover in (parent or Path(tempfile.gettempdir())).glob(f"{project}-volatile-disk-*"):
        if not os.path.ismount(leftover / "mnt"):
            shutil.rmtree(leftover, ignore_errors=True)
    return removed


def db_on(
    backend: Engine,
    disk: VolatileDisk,
    host: str,
    port: int,
    policy: str,
    *,
    unsafe: bool = False,
) -> helpers.Helper:
    """A copy of db, listening on ``port`` in ``host``'s namespaces, its log on ``disk``.
    ``unsafe``: acknowledge before fsync under `always` (a deliberately wrong setting, to
    show that the claim catches it)."""
    return helpers.start_process(
        backend,
        host,
        f"{backend.topology.project}-db-on-volatile-disk-{policy}",
        ["python3", "-m", "services.servers.db"],
        "db-on-volatile-disk",
        data_folder=disk.mount,
        environment={
            "LAB_SERVICE": "db-on-volatile-disk",
            "DB_PORT": str(port),
            "DB_AOF_PATH": f"/data/{policy}.aof",
            "DB_APPENDFSYNC": policy,
            "DB_UNSAFE_ACK_BEFORE_FSYNC": "1" if unsafe else "",
        },
    )


def power_cut(process: helpers.Helper, disk: VolatileDisk) -> int:
    """The process dies with the machine, and the disk keeps only what was fsynced."""
    process.kill()
    return disk.drop()
