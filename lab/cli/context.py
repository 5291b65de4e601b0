"""What every command gets: its arguments, the console, and the lab (opened on first use)."""

from __future__ import annotations

import argparse
import os
import sys
from functools import cached_property

from rich.console import Console

from lab.api import Lab
from lab.api import open as open_lab
from lab.views.render import Reporter


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # Piped output (CI logs, files) gets room for the timeline rather than rich's 80 columns.
        width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "150"))
        self.console = Console(width=width)
        self.opened: Lab | None = None

    @cached_property
    def lab(self) -> Lab:
        """The lab the global options point at (Compose's conventions otherwise)."""
        self.opened = open_lab(
            self.args.project_dir, files=self.args.file or (), project=self.args.project
        )
        return self.opened

    def reporter(self) -> Reporter:
        return Reporter(self.console)

    def print(self, *things: object, plain: bool = False) -> None:
        """Print for people; ``plain``: exactly as given (no markup, no highlighting)."""
        for thing in things:
            if plain:
                self.console.print(thing, markup=False, highlight=False, soft_wrap=True)
            else:
                self.console.print(thing)
