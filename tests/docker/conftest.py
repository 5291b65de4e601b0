"""Tier 3: the real stack in Docker, under a project name and subnet of its own.

Every published port is left to Docker to choose (the LAB_*_PORT variables set
empty), so a lab the user is running, or any other program, is never in the
way. Docker being unavailable fails this tier loudly: it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

import lab as socklab
from lab.backends.engine import Engine
from lab.engine.compose import Compose
from tests.conftest import engine_for, sigint_as_default

ROOT = Path(__file__).resolve().parents[2]
# Overridable so that two checkouts can run this tier side by side on one machine.
PROJECT = os.environ.get("LAB_TEST_PROJECT", "socklab-test")
ENV = {
    "LAB_NET_PREFIX": os.environ.get("LAB_TEST_NET_PREFIX", "10.203.77"),
    "LAB_HTTP_PORT": "",
    "LAB_DB_PORT": "",
    "LAB_TCP_SHOUT_PORT": "",
    "LAB_UDP_SHOUT_PORT": "",
    "LAB_NAME": "",  # a named lab in the user's shell must not become the test lab
}


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = engine_for("Docker")
    Compose.version()  # raises ComposeMissing, with the fix, when v2 is absent
    return client


def open_lab(
    client: docker.DockerClient,
    project: str,
    env: dict[str, str],
    files: tuple[Path, ...] = (),
) -> socklab.Lab:
    """A lab of the project's own files (or ``files``), as a lab script opens one."""
    return socklab.open(ROOT, project=project, env=env, files=files, client=client)


def make_lab(client: docker.DockerClient, project: str, env: dict[str, str]) -> Engine:
    stack: Engine = open_lab(client, project, env).backend
    return stack


@pytest.fixture(scope="session")
def net(docker_client: docker.DockerClient) -> Iterator[socklab.Lab]:
    """The test lab, through the public API."""
    opened = open_lab(docker_client, PROJECT, ENV)
    opened.down()  # a previous run killed half-way may have left something
    opened.up(timeout=180)
    yield opened
    opened.down()
    assert not opened.backend.owned(), f"left behind: {opened.backend.owned()}"


@pytest.fixture(scope="session")
def lab(net: socklab.Lab) -> Engine:
    """The same lab, as the driver's engine sees it (containers, states, exec)."""
    stack: Engine = net.backend
    return stack


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll to a deadline; fail with what was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def settled(lab: Engine, services: list[str] | None = None) -> None:
    """Docker reports every service (or ``services``) healthy. The lab itself counts a
    service ready as soon as its healthcheck passes when the lab runs it, so Docker's own
    first check may come up to one interval (1 s) later: this polls for it."""
    names = services or list(lab.topology.services)

    def healthy() -> bool:
        states = lab.states()
        return all(n in states and states[n].ready for n in names)

    wait_for(healthy, f"Docker to report {', '.join(names)} healthy", timeout=15)


def start_lab_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.Popen[str]:
    """`python -m lab ARGS` as a user would run it, with the test lab's settings."""
    return subprocess.Popen(
        [sys.executable, "-m", "lab", *args],
        cwd=cwd,
        env={**os.environ, **ENV, **(env or {})},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_as_default,
    )


def run_lab_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    proc = start_lab_cli(*args, env=env, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--window-size=1500,1150"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    try:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    except WebDriverException as exc:
        pytest.fail(f"headless Chromium did not start (scripts/setup installs it): {exc.msg}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def until(browser: WebDriver, script: str, what: str, timeout: float = 30) -> object:
    """Poll a JavaScript expression in the page until it is truthy."""
    return WebDriverWait(browser, timeout).until(
        lambda d: d.execute_script(f"return {script}"), message=f"waiting for {what}"
    )
