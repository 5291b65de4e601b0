"""This terminal joined to a shell in a lab host: keys in, screen out, size kept in step.

The local terminal is put into raw mode, so that every key (Ctrl-C, Ctrl-D, arrows,
tab) goes to the shell in the host, as `docker exec -it` and `kathara connect` do;
its settings are put back however the session ends. A window resized here is
resized there (SIGWINCH).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.engine.terminal import Terminal


@contextlib.contextmanager
def raw(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def join(terminal: Terminal) -> None:
    """Until the shell ends: what is typed goes there, what it prints comes here."""
    keyboard, screen = sys.stdin.fileno(), sys.stdout.fileno()

    def resize(signum: int = 0, frame: FrameType | None = None) -> None:
        size = shutil.get_terminal_size()
        terminal.resize(size.lines, size.columns)

    previous = signal.signal(signal.SIGWINCH, resize)
    resize()
    selector = selectors.DefaultSelector()
    selector.register(keyboard, selectors.EVENT_READ, "keys")
    selector.register(terminal.fileno(), selectors.EVENT_READ, "shell")
    try:
        with raw(keyboard):
            while True:
                for key, _ in selector.select():
                    if key.data == "keys":
                        typed = os.read(keyboard, 4096)
                        if not typed:  # end of input: the shell gets Ctrl-D
                            typed = b"\x04"
                        terminal.write(typed)
                    else:
                        printed = terminal.read()
                        if not printed:
                            return
                        os.write(screen, printed)
    finally:
        selector.close()
        signal.signal(signal.SIGWINCH, previous)


def quiet_stdout() -> None:
    """Standard output pointed at nothing, once its reader has gone: Python's last flush
    at exit would fail again, with a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
