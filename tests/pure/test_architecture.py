"""The shape of the code, held: one door to the engine, small modules, no import cycle,
and one hardening recipe for every container the driver creates (docs/architecture.md).

Each rule is checked on the source as it is, and each checker is shown to catch a
breach on a made-up one, so that none can pass by finding nothing to look at.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from lab.engine import hardening

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab"
MAX_LINES = 600
ENGINE_FOLDERS = ("lab/backends/", "lab/engine/")
DOORS = ("lab/experiments", "lab/web", "lab/bench", "lab/grading", "lab/cli")


def modules() -> dict[str, Path]:
    """Every module of the driver and of the services it carries, by dotted name."""
    found = {}
    for base, prefix in ((LAB, ["lab"]), (ROOT / "services", ["lab", "services"])):
        for path in base.rglob("*.py"):
            rel = path.relative_to(base).with_suffix("")
            if rel.parts and rel.parts[0] in ("services", "examples"):
                continue  # the links to the top-level folders: walked as themselves
            parts = [*prefix, *rel.parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported(source: str, name: str, known: set[str], is_package: bool = False) -> set[str]:
    """The modules of ``known`` that ``source`` (module ``name``) imports, at any depth of
    its code (a function's lazy import too), leaving out what only type checkers see."""
    out: set[str] = set()

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                out.update(filter(None, (resolve(a.name) for a in child.names)))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - (child.level - 1)]
                    base = ".".join([*package, *([base] if base else [])])
                for alias in child.names:
                    whole = f"{base}.{alias.name}"
                    target = whole if whole in known else resolve(base)
                    if target:
                        out.add(target)
            visit(child)

    visit(ast.parse(source))
    out.discard(name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        name: imported(path.read_text(), name, known, path.name == "__init__.py")
        for name, path in found.items()
    }


def driver_files() -> list[Path]:
    return [
        p
        for p in LAB.rglob("*.py")
        if not str(p.relative_to(ROOT)).startswith(("lab/services/", "lab/examples/"))
    ]


def imports_docker(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "docker" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "docker":
            return True
    return False


def test_the_import_graph_holds_every_module_and_has_no_cycle() -> None:
    graph = import_graph()
    assert "lab.backends.engine" in graph
    assert "lab.services.probes.porttable" in graph
    assert "lab.backends.model" in graph["lab.backends.engine"]  # edges are really read
    assert cycles(graph) == []


def test_a_cycle_is_found_lazy_imports_too() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    lazy = "def f():\n    from lab import journal\n"
    assert imported_source(lazy) == {"lab.journal"}
    only_typing = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import lab.journal\n"
    assert imported_source(only_typing) == set()


def imported_source(source: str) -> set[str]:
    """What a made-up module of the lab imports, judged as the real ones are."""
    return imported(source, "lab._architecture_probe", set(modules()))


def test_only_the_backends_and_the_engine_folder_import_docker() -> None:
    importing = {str(p.relative_to(ROOT)) for p in driver_files() if imports_docker(p.read_text())}
    assert importing, "the backends import docker: none found means nothing was read"
    assert sorted(p for p in importing if not p.startswith(ENGINE_FOLDERS)) == []
    assert imports_docker("def f():\n    import docker.errors\n")
    assert imports_docker("from docker.models.containers import Container\n")
    assert not imports_docker("from lab.engine.docker_client import Client\n")


def test_no_driver_module_is_over_the_line_limit() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in driver_files()}
    assert len(sizes) > 50
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_experiments_web_bench_grading_and_cli_go_through_the_lab() -> None:
    """Through ``Lab`` and its backend's verbs: never a backend reached as ``lab.stack``."""
    pattern = re.compile(r"lab\.stack|\.stack\.")
    breaches = [
        f"{p.relative_to(ROOT)}:{n}"
        for folder in DOORS
        for p in (ROOT / folder).rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert breaches == []
    assert pattern.search("rows = net.stack.port_table(host)")


# --- hardening ------------------------------------------------------------------------


def test_the_process_profile_is_compose_yamls_own() -> None:
    """A process the driver starts is locked down as Compose starts the lab's own."""
    anchor = yaml.safe_load((ROOT / "compose.yaml").read_text())["x-image"]
    assert anchor["user"] == hardening.PROCESS.user
    assert anchor["read_only"] is hardening.PROCESS.read_only
    assert tuple(anchor["cap_drop"]) == hardening.PROCESS.cap_drop
    assert tuple(anchor["security_opt"]) == hardening.PROCESS.security_opt
    assert anchor["pids_limit"] == f"${{LAB_PIDS_LIMIT:-{hardening.PROCESS.pids_limit}}}"
    assert anchor["mem_limit"] == f"${{LAB_MEM_LIMIT:-{hardening.PROCESS.mem_limit}}}"


CREATES = re.compile(r"\.containers\.(run|create)\(|\.create_container\(|\.create_host_config\(")
# Test machines are dockerd in a container (privileged by necessity: docs/scale-out.md);
# no lab container runs there but inside them.
NOT_LAB_CONTAINERS = {"lab/backends/swarm/machines.py"}


def creation_calls(source: str) -> list[tuple[int, bool]]:
    """Each call that creates a container (or its host config), and whether it takes its
    settings from a hardening profile."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and CREATES.search(ast.unparse(node.func) + "("):
            hardened = any("hardening." in ast.unparse(kw.value) for kw in node.keywords)
            found.append((node.lineno, hardened))
    return found


def test_every_container_the_driver_creates_takes_a_hardening_profile() -> None:
    calls = {
        str(p.relative_to(ROOT)): creation_calls(p.read_text())
        for p in driver_files()
        if str(p.relative_to(ROOT)) not in NOT_LAB_CONTAINERS
    }
    sites = [(path, line) for path, found in calls.items() for line, _ in found]
    assert len(sites) >= 3, sites  # helpers, companion processes, the Swarm's anchors
    assert [(p, line) for p, found in calls.items() for line, ok in found if not ok] == []


@pytest.mark.parametrize(
    ("source", "hardened"),
    [
        ("c.containers.run(img, argv, **hardening.PROCESS.run_kwargs())", True),
        ("api.create_host_config(**hardening.COMPANION.host_config())", True),
        ("c.containers.run(img, argv, user='0:0', cap_add=['ALL'])", False),
        ("api.create_container(img, host_config=api.create_host_config(privileged=True))", False),
    ],
)
def test_a_creation_without_a_profile_is_caught(source: str, hardened: bool) -> None:
    found = creation_calls(source)
    assert found
    assert found[0][1] is hardened


def test_profiles_read_back_from_the_engine_agree_or_say_how_not() -> None:
    inspected = {
        "ReadonlyRootfs": True,
        "CapDrop": ["ALL"],
        "CapAdd": None,
        "SecurityOpt": ["no-new-privileges:true"],
        "PidsLimit": 64,
        "Memory": 256 * 1024**2,
        "Init": None,
    }
    assert hardening.PROCESS.differences(inspected, "10001:10001") == []
    assert hardening.PROCESS.differences(inspected, "0:0") == ["user: '0:0', not '10001:10001'"]
    loose = {**inspected, "CapAdd": ["CAP_NET_ADMIN"], "ReadonlyRootfs": False}
    assert len(hardening.PROCESS.differences(loose, "10001:10001")) == 2
    granted = hardening.helper("NET_ADMIN")
    assert granted.user == "0:0"
    assert granted.cap_add == ("NET_ADMIN",)
    as_engine = {**inspected, "ReadonlyRootfs": False, "CapAdd": ["CAP_NET_ADMIN"]}
    as_engine |= {"PidsLimit": 16, "Memory": 128 * 1024**2}
    assert granted.differences(as_engine, "0:0") == []
    assert hardening.helper().user == hardening.UNPRIVILEGED


def layout_names(readme: str) -> set[str]:
    """The names the README's Layout block gives under lab/ (two-space indented)."""
    block = readme.split("## Layout", 1)[1].split("```")[1]
    names: set[str] = set()
    inside = False
    for line in block.splitlines():
        if not line.startswith(" "):
            inside = line.startswith("lab/")
        elif inside and not line.startswith("   "):
            head = re.split(r"\s{3,}", line.strip())[0]
            names.update(n.strip().rstrip("/") for n in head.split(","))
    return names


def test_the_readmes_layout_names_every_part_of_lab_and_nothing_else() -> None:
    listed = layout_names((ROOT / "README.md").read_text())
    present = {
        p.name.removesuffix(".py")
        for p in LAB.iterdir()
        if p.name not in ("__init__.py", "__main__.py", "__pycache__")
    }
    listed = {n.removesuffix(".py") for n in listed}
    assert "backends" in present
    assert sorted(present - listed) == []
    assert sorted(listed - present) == []
    assert layout_names("## Layout\n```\nlab/\n  api.py   the door\n```\n") == {"api.py"}


def test_engine_and_swarm_meet_the_backend_protocol() -> None:
    """mypy checks the assignments below; at run time, every verb is really there."""
    from lab.backends.base import Backend, MachineFaults
    from lab.backends.engine import Engine
    from lab.backends.swarm.faults import SwarmFaults
    from lab.backends.swarm.swarm import Swarm

    def as_backend(engine: Engine, swarm: Swarm) -> tuple[Backend, Backend]:
        return engine, swarm

    def as_faults(faults: SwarmFaults) -> MachineFaults:
        return faults

    verbs = [n for n in vars(Backend) if not n.startswith("_")]
    assert "signal" in verbs
    for cls in (Engine, Swarm):
        assert [v for v in verbs if not callable(getattr(cls, v, None))] == []
    assert [v for v in ("apply", "mend", "drops") if not hasattr(SwarmFaults, v)] == []
