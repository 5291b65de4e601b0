"""What a container costs the machine, read from its cgroup (and its containerd shim).

Memory is the cgroup's usage less its inactive file pages: what `docker stats` shows,
the part the kernel cannot simply drop. CPU is the cgroup's own counter; the shim's
(with the `runc` children it reaped: every `docker exec`, healthchecks included) is
read beside it, since that cost lands outside the container's cgroup. Both cgroup
layouts are read (v1 with the cgroupfs driver, v2); None where neither is there.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
PROC = Path("/proc")


def working_set(usage: int, stat_text: str) -> int:
    """usage less inactive file pages (v1: total_inactive_file; v2: inactive_file)."""
    stat = _stat(stat_text)
    inactive = int(stat.get("total_inactive_file", stat.get("inactive_file", "0")))
    return max(0, usage - inactive)


def process_ticks(stat_text: str) -> int:
    """utime + stime + cutime + cstime from /proc/PID/stat (the name may hold spaces)."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15])


def memory_bytes(container_id: str, root: Path = CGROUP) -> int | None:
    v1 = root / "memory" / "docker" / container_id
    if v1.is_dir():
        usage = int((v1 / "memory.usage_in_bytes").read_text())
        return working_set(usage, (v1 / "memory.stat").read_text())
    for v2 in _v2_dirs(container_id, root):
        if (v2 / "memory.current").exists():
            usage = int((v2 / "memory.current").read_text())
            return working_set(usage, (v2 / "memory.stat").read_text())
    return None


def anon_bytes(container_id: str, root: Path = CGROUP) -> int | None:
    """Anonymous memory (v1: total_rss; v2: anon): what only the processes can give back."""
    for folder in (root / "memory" / "docker" / container_id, *_v2_dirs(container_id, root)):
        if (folder / "memory.stat").exists():
            stat = _stat((folder / "memory.stat").read_text())
            return int(stat.get("total_rss", stat.get("anon", "0")))
    return None


def _stat(text: str) -> dict[str, str]:
    return dict(line.split()[:2] for line in text.splitlines() if len(line.split()) >= 2)


def cpu_seconds(container_id: str, root: Path = CGROUP) -> float | None:
    v1 = root / "cpuacct" / "docker" / container_id / "cpuacct.usage"
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for v2 in _v2_dirs(container_id, root):
        if (v2 / "cpu.stat").exists():
            for line in (v2 / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
    return None


def _v2_dirs(container_id: str, root: Path) -> list[Path]:
    return [root / "system.slice" / f"docker-{container_id}.scope", root / "docker" / container_id]


def shims(container_ids: set[str], proc: Path = PROC) -> dict[str, int]:
    """container id -> the pid of its containerd shim (runc v2: one per container)."""
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or b"containerd-shim" not in argv[0]:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == b"-id" and argv[i + 1].decode() in container_ids:
                found[argv[i + 1].decode()] = int(entry.name)
    return found


def shim_seconds(pid: int, proc: Path = PROC) -> float | None:
    try:
        return process_ticks((proc / str(pid) / "stat").read_text()) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None
