"""Every container of the lab, read back through the Docker API: least privilege, really applied."""

from __future__ import annotations

from typing import Any

import pytest

from lab.backends.engine import Engine


@pytest.fixture
def containers(lab: Engine) -> dict[str, dict[str, Any]]:
    found = {name: c.attrs for name, c in lab.containers().items()}
    assert set(found) == set(lab.topology.services)
    return found


def test_no_container_runs_as_root_or_can_write_or_escalate(
    lab: Engine,
    containers: dict[str, dict[str, Any]],
) -> None:
    for name, attrs in containers.items():
        host_config, config = attrs["HostConfig"], attrs["Config"]
        assert config["User"] == "10001:10001", name
        assert host_config["ReadonlyRootfs"] is True, name
        assert host_config["CapDrop"] == ["ALL"], name
        assert not host_config["CapAdd"], name
        assert "no-new-privileges:true" in host_config["SecurityOpt"], name
        assert host_config["Privileged"] is False, name
        assert 0 < host_config["PidsLimit"] <= 1024, name
        assert 0 < host_config["Memory"] <= 1024**3, name


def test_every_process_really_runs_unprivileged(lab: Engine) -> None:
    for name in lab.topology.services:
        top = lab.container(name).top(ps_args="-o pid,uid,comm")  # Docker needs the PID column
        uids = {row[top["Titles"].index("UID")] for row in top["Processes"]}
        assert uids == {"10001"}, f"{name}: {top['Processes']}"


def test_published_ports_listen_on_loopback_only(containers: dict[str, dict[str, Any]]) -> None:
    published = [
        binding
        for attrs in containers.values()
        for bindings in (attrs["NetworkSettings"].get("Ports") or {}).values()
        for binding in bindings or []
    ]
    assert len(published) == 4
    assert {b["HostIp"] for b in published} == {"127.0.0.1"}


def test_root_filesystem_refuses_writes(lab: Engine) -> None:
    out = lab.run_in("db", ["sh", "-c", "touch /opt/lab/x 2>&1 || true"])
    assert b"Read-only file system" in out
