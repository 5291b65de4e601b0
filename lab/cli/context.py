"""What every command gets: its arguments, the console, and the lab (opened on first use).

The console and the lab are made on first use, and their modules imported then: a
command that needs no lab (``--help``, ``list``) never loads the Docker SDK.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import cached_property
from typing import TYPE_CHECKING

from lab.errors import UsageError
from lab.names import NAME_ENV

if TYPE_CHECKING:
    from rich.console import Console

    from lab.api import Lab
    from lab.views.render import Reporter


class Invocation:
    """One command as typed: its arguments, the console, and the lab it works on (opened
    on first use)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.opened: Lab | None = None
        self.prog: str = getattr(args, "prog", "lab")  # socklab or lab: as the user typed it

    @cached_property
    def console(self) -> Console:
        from rich.console import Console

        # Piped output (CI logs, files) gets room for the timeline rather than rich's 80 columns.
        width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "150"))
        return Console(width=width)

    @property
    def names(self) -> list[str]:
        """The named labs asked for: ``--name`` (repeatable where a command allows), else
        $LAB_NAME; [] for the lab of the Compose files' own project."""
        given: list[str] = getattr(self.args, "lab_names", None) or []
        if given:
            return given

        return [os.environ[NAME_ENV]] if os.environ.get(NAME_ENV) else []

    @cached_property
    def lab(self) -> Lab:
        """The lab the options point at: a named one, or the Compose files' project."""
        if len(self.names) > 1:
            raise UsageError(
                f"{self.args.command} works on one lab at a time",
                "give one --name (only up and down take several)",
            )
        return self.open(self.names[0] if self.names else None)

    def open(self, name: str | None) -> Lab:
        """A lab by name (None: the Compose files' own project), as the global options say."""
        from lab.api import open as open_lab

        self.opened = open_lab(
            self.args.project_dir,
            files=self.args.file or (),
            project=self.args.project,
            name=name,
            cluster=getattr(self.args, "cluster", None),
        )
        return self.opened

    def reporter(self) -> Reporter:
        from lab.views.render import Reporter

        return Reporter(self.console)

    def print(self, *things: object, plain: bool = False) -> None:
        """Print for people; ``plain``: exactly as given (no markup, no highlighting)."""
        for thing in things:
            if plain:
                self.console.print(thing, markup=False, highlight=False, soft_wrap=True)
            else:
                self.console.print(thing)
