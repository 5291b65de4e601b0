"""A filesystem that can lose power: unsynced writes live in memory until fsync.

    python -m lab.chaos.lazyfs BACKING MOUNTPOINT CONTROL_SOCKET

It passes everything through to the folder BACKING, except file data: writes and
truncations wait in a cache (``lab.chaos.volatile.Unsynced``, one per file, as a
page cache holds them) until the program fsyncs that file. Writing ``drop`` to
the control socket throws every unsynced byte away, as a power cut does;
``stats`` says how many fsyncs arrived and how many bytes wait. Metadata (create,
rename, unlink) is passed through at once. It runs on the Docker host as root
(FUSE, mounted with allow_other) and is bind-mounted into a container, whose
processes keep no capability at all; ``lab.chaos.powerloss`` starts and stops it.
Jepsen's LazyFS is the model.
"""

from __future__ import annotations

import errno
import json
import os
import socketserver
import sys
import threading
from pathlib import Path
from typing import Any

from mfusepy import FUSE, FuseOSError, Operations, fuse_get_context

from lab.chaos.volatile import Unsynced

STAT_FIELDS = (
    "st_atime_ns",
    "st_ctime_ns",
    "st_gid",
    "st_mode",
    "st_mtime_ns",
    "st_nlink",
    "st_size",
    "st_uid",
)


class LazyFS(Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, backing: str) -> None:
        self.root = backing
        self.lock = threading.RLock()
        self.caches: dict[str, Unsynced] = {}
        self.fsyncs = 0
        self.lost = 0

    def _real(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _cache(self, path: str) -> Unsynced:
        if path not in self.caches:
            self.caches[path] = Unsynced(os.path.getsize(self._real(path)))
        return self.caches[path]

    # --- control ---

    def drop(self) -> int:
        """Power off: every unsynced byte of every file is gone."""
        with self.lock:
            lost = 0
            for path, cache in self.caches.items():
                size = os.path.getsize(self._real(path)) if os.path.exists(self._real(path)) else 0
                lost += cache.drop(size)
            self.caches.clear()
            self.lost += lost
            return lost

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "fsyncs": self.fsyncs,
                "unsynced_bytes": sum(c.unsynced_bytes for c in self.caches.values()),
                "lost_bytes": self.lost,
            }

    def _sync(self, path: str) -> None:
        cache = self.caches.get(path)
        if cache is None or not cache.dirty:
            return
        fd = os.open(self._real(path), os.O_WRONLY)
        try:
            for kind, at, data in cache.sync_plan():
                if kind == "truncate":
                    os.ftruncate(fd, at)
                else:
                    os.pwrite(fd, data, at)
            os.fsync(fd)
        finally:
            os.close(fd)
        cache.synced()

    # --- the filesystem ---

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        with self.lock:
            try:
                st = os.lstat(self._real(path))
            except FileNotFoundError:
                raise FuseOSError(errno.ENOENT) from None
            attrs = {name: getattr(st, name) for name in STAT_FIELDS}
            if path in self.caches:
                attrs["st_size"] = self.caches[path].size
            return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def access(self, path: str, amode: int) -> int:
        if not os.path.exists(self._real(path)):
            raise FuseOSError(errno.ENOENT)
        return 0

    def open(self, path: str, flags: int) -> int:
        if not os.path.exists(self._real(path)):
            raise FuseOSError(errno.ENOENT)
        return 0

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        with self.lock:
            real = self._real(path)
            os.close(os.open(real, os.O_CREAT | os.O_WRONLY, mode))
            uid, gid, _ = fuse_get_context()
            os.chown(real, uid, gid)
            self.caches[path] = Unsynced(os.path.getsize(real))
            return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        with self.lock:
            real = self._real(path)
            backing_size = os.path.getsize(real)
            with open(real, "rb") as f:

                def pread(at: int, length: int) -> bytes:
                    return os.pread(f.fileno(), length, at)

                cache = self.caches.get(path) or Unsynced(backing_size)
                return cache.read(offset, size, pread, backing_size)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self.lock:
            self._cache(path).write(offset, data)
            return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self.lock:
            self._cache(path).truncate(length)
            return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self.lock:
            self._sync(path)
            self.fsyncs += 1
            return 0

    def flush(self, path: str, fh: int) -> int:
        return 0  # close() promises nothing: the data stays in the cache

    def release(self, path: str, fh: int) -> int:
        return 0

    def unlink(self, path: str) -> int:
        with self.lock:
            os.unlink(self._real(path))
            self.caches.pop(path, None)
            return 0

    def rename(self, old: str, new: str) -> int:
        with self.lock:
            os.rename(self._real(old), self._real(new))
            if old in self.caches:
                self.caches[new] = self.caches.pop(old)
            return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        uid, gid, _ = fuse_get_context()
        os.chown(self._real(path), uid, gid)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._real(path))
        else:
            os.utime(self._real(path), ns=times)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._real(path))
        names = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree")
        return {n: getattr(st, n) for n in (*names, "f_files", "f_flag", "f_frsize", "f_namemax")}


def serve_control(fs: LazyFS, address: str) -> socketserver.UnixStreamServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            command = self.rfile.readline().strip().decode()
            if command == "drop":
                answer: dict[str, int] = {"lost_bytes": fs.drop()}
            elif command == "stats":
                answer = fs.stats()
            else:
                answer = {"error": 1}
            self.wfile.write(json.dumps(answer).encode() + b"\n")

    server = socketserver.UnixStreamServer(address, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(
            "usage: python -m lab.chaos.lazyfs BACKING MOUNTPOINT CONTROL_SOCKET", file=sys.stderr
        )
        return 2
    backing, mountpoint, control = argv
    fs = LazyFS(str(Path(backing).resolve()))
    serve_control(fs, control)
    FUSE(
        fs,
        mountpoint,
        foreground=True,
        allow_other=True,  # the container's user is not the mounter
        direct_io=True,  # no page cache above it: a read after `drop` sees what survived
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
