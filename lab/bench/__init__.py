"""Benchmarks: the lab's services measured against real peers, side by side, on this machine.

  redis       db against a real redis-server: same path, limits and persistence (none,
              then an append-only log under each fsync policy on both), warm-up, five
              interleaved repetitions, SET and GET, without and with pipelining (16)
  c10k        10,000 connections to tcp-shout, each answered and held; memory per held
              connection from the container's cgroup (kernel included) and from VmRSS
  udp         offered against achieved datagram rates for udp-shout (its log off) and
              socat (a reference peer), drops counted on each one's own socket, twice
  packets     `lab packets` listing a capture of 100,000 frames, against `tshark -r`
  up          `lab up` from built images to every service answering, where the time goes
  curriculum  every built-in experiment once (`lab run --all`), each one's time
  cold        a first `lab up` with no images at all (removes them first: on purpose only)
  check       `check` of the seed's servers and the fixed ones, each several times: the
              time one server's check takes
  density     how many named labs this machine holds: K labs started one after another,
              memory and idle CPU per lab, dispatch in each (starts labs of its own)
  class       `lab class serve` with K students (--labs) running dispatch at once, three
              rounds: time to finish, page latency p50/p99 meanwhile, server memory
  scale       N hosts added (0, 10, 30), one UDP process each: `lab up` beside `docker
              compose up -d --wait` of the same files, `lab status` beside `docker compose
              ps`, three interleaved repetitions (a project of its own)
  start       the installed command's start: `socklab --help` and `socklab status` beside
              `python -c pass` and `docker compose ps`, ten rounds

Benchmarks are commands, not tests: the test suite only runs each on a tiny setting.
`lab bench --markdown BENCHMARKS.md` writes the page from the JSON it also writes;
never edit BENCHMARKS.md by hand (a test holds it to the committed JSON).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from lab.bench.model import Bench, BenchError, Sizes, Spread, cleanup

# name -> "module:function" in lab.bench, imported only when that benchmark runs: the
# parser (`socklab --help`) must not load every benchmark, the experiments and Docker.
BENCHES: dict[str, str] = {
    "redis": "redis:run",
    "c10k": "c10k:run",
    "udp": "udp:run",
    "packets": "packets:run",
    "up": "speed:up",
    "curriculum": "speed:curriculum",
    "cold": "speed:cold",
    "density": "density:run",
    "check": "check:run",
    "class": "classroom:run",
    "scale": "scale:run",
    "start": "start:run",
}


def load(name: str) -> Callable[..., Bench]:
    """The function that runs benchmark ``name`` (its module imported now)."""
    module, function = BENCHES[name].split(":")
    found: Callable[..., Bench] = getattr(importlib.import_module(f"lab.bench.{module}"), function)
    return found


NEED_NO_LAB = ("density", "class")  # each starts labs of its own
DEFAULT = (
    "redis",
    "c10k",
    "udp",
    "packets",
    "up",
    "check",  # before curriculum: its sockets experiment leaves TIME_WAITs on 8080
    "curriculum",
    "scale",
    "start",
)  # not cold (it deletes
# images) nor density (40 minutes) nor class (30 labs): each only when asked for

__all__ = [
    "BENCHES",
    "DEFAULT",
    "NEED_NO_LAB",
    "Bench",
    "BenchError",
    "Sizes",
    "Spread",
    "cleanup",
    "load",
]
