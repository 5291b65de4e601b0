"""Experiments as files: a Python file that defines one ``lab.Experiment`` subclass.

``lab run path/to/file.py`` runs one; ``lab list`` also lists the files in the
experiments folder of the working directory (``./experiments``, or the folder
named by ``LAB_EXPERIMENTS``). A mistake in a file (a syntax error, an import
that fails, an exception in its ``run`` or ``judge``) is reported as one line
naming the file and the line, never as a traceback of the driver.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from lab.errors import ExperimentFileError
from lab.experiments.model import Experiment
from lab.names import EXPERIMENTS_ENV, EXPERIMENTS_FOLDER

FOLDER_ENV = EXPERIMENTS_ENV
DEFAULT_FOLDER = EXPERIMENTS_FOLDER


def folder() -> Path:
    """Where `lab list` looks for experiment files."""
    return Path(os.environ.get(FOLDER_ENV) or DEFAULT_FOLDER)


def is_file_name(name: str) -> bool:
    """Whether `lab run NAME` means a file rather than a built-in experiment."""
    return name.endswith(".py") or os.sep in name


def load(path: Path | str) -> Experiment:
    """The experiment a file defines; ExperimentFileError (one line) if it cannot be had."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentFileError(f"{path}: no such experiment file")
    module_name = f"lab_experiment_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ExperimentFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ExperimentFileError(f"{path}:{exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        raise ExperimentFileError(where(exc, path)) from None
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Experiment)
        and value.__module__ == module_name
        and not inspect.isabstract(value)
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise ExperimentFileError(
            f"{path}: expected one lab.Experiment subclass with run and judge, found {names}"
        )
    try:
        experiment = found[0]()
    except Exception as exc:
        raise ExperimentFileError(where(exc, path)) from None
    for attribute in ("name", "question"):
        if not isinstance(getattr(experiment, attribute, None), str):
            raise ExperimentFileError(f"{path}: {found[0].__name__} has no {attribute} (a string)")
    return experiment


def where(exc: BaseException, path: Path) -> str:
    """``FILE:LINE: Error: message``, at the deepest line of ``path`` the error passed."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"{path}:{line}: {text}" if line is not None else f"{path}: {text}"


@dataclass(frozen=True)
class Found:
    """An experiment file in the experiments folder: loaded, or why it could not be."""

    path: Path
    experiment: Experiment | None
    error: str = ""


def discover(where_: Path | None = None) -> list[Found]:
    """Every ``*.py`` file in the experiments folder (files starting with ``_`` are skipped)."""
    place = where_ or folder()
    if not place.is_dir():
        return []
    found = []
    for path in sorted(place.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            found.append(Found(path, load(path)))
        except ExperimentFileError as exc:
            found.append(Found(path, None, exc.what))
    return found
