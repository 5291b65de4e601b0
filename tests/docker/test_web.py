"""`lab web` in a real browser (Debian's headless Chromium, driven by Selenium) against the real
lab: the page shows what `lab status` shows, sends, kills and restores, replays a recorded
run with no lab, and refuses requests without the token or from a foreign Host.
Screenshots go to test-artifacts/web/ (the README shows one of them)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

import lab as socklab
from lab.backends.engine import Engine
from tests.conftest import sigint_as_default
from tests.docker.conftest import ENV, PROJECT, ROOT, run_lab_cli, until, wait_for

ARTIFACTS = ROOT / "test-artifacts" / "web"
RECORDED = ROOT / "tests" / "pure" / "fixtures" / "results" / "dispatch.json"


def start_web(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`lab web` on a free port; its process and the address it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab", "-p", PROJECT, "web", "--port", "0", *args],
        cwd=ROOT,
        env={**os.environ, **ENV, "COLUMNS": "300"},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_as_default,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if "open http://" in line:
                return proc, line.split("open ", 1)[1].strip()
        if proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"lab web did not print its address: {proc.stderr.read() if proc.stderr else ''}")


def stop_web(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


@pytest.fixture(scope="module")
def page(net: socklab.Lab, browser: WebDriver) -> Iterator[WebDriver]:
    proc, address = start_web()
    browser.get(address)
    # The page draws the topology once its first state arrives: tests start from there.
    until(browser, "document.querySelectorAll('.process[data-process]').length > 0", "the topology")
    yield browser
    code, _ = stop_web(proc)
    assert code == 0


def shot(browser: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def click(browser: WebDriver, css: str, timeout: float = 10) -> None:
    """Click what ``css`` selects. The page redraws the topology on every state it is sent,
    so an element found may be replaced before the click lands: find it again until then."""

    def attempt(driver: WebDriver) -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
        except (StaleElementReferenceException, NoSuchElementException):
            return False
        return True

    WebDriverWait(browser, timeout).until(attempt, message=f"clicking {css}")


def test_the_page_shows_hosts_addresses_and_port_owners_as_status_does(
    page: WebDriver, lab: Engine
) -> None:
    status = json.loads(run_lab_cli("-p", PROJECT, "status", "--json").stdout)
    until(page, "document.querySelectorAll('.host').length > 0", "the topology")
    for host in status:
        node = page.find_element(By.CSS_SELECTOR, f'.host[data-host="{host["host"]}"]')
        assert node.get_attribute("data-ip") == host["ip"]
        for row in host["ports"]:
            if row["pid"] and row["address"] != "127.0.0.11":
                selector = f'.port[data-host="{host["host"]}"][data-port="{row["protocol"]}/{row["port"]}"]'
                assert (
                    page.find_element(By.CSS_SELECTOR, selector).get_attribute("data-owner")
                    == row["service"]
                )
    shot(page, "topology")


def choose(page: WebDriver, element_id: str, value: str, timeout: float = 5.0) -> None:
    """Pick an option; the page rebuilds its menus when the lab changes (a process killed),
    so a menu found a moment ago may be gone: find it again, to a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            Select(page.find_element(By.ID, element_id)).select_by_value(value)
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def send_from_page(page: WebDriver, target: str, words: str) -> str:
    choose(page, "send-target", target)
    choose(page, "send-origin", "client")
    box = page.find_element(By.ID, "send-words")
    box.clear()
    box.send_keys(words)
    page.execute_script("document.getElementById('send-reply').textContent = ''")
    page.find_element(By.ID, "send-button").click()
    until(
        page,
        "document.getElementById('send-reply').textContent.length > 0 && "
        "!document.getElementById('send-reply').textContent.startsWith('sending')",
        f"the answer of {target}",
    )
    return str(page.find_element(By.ID, "send-reply").text)


def test_a_tcp_message_sent_from_the_page_is_answered(page: WebDriver) -> None:
    assert send_from_page(page, "tcp-shout", "hello from the page") == "HELLO FROM THE PAGE"
    until(page, "document.querySelectorAll('#happenings li').length > 0", "the happenings log")
    logged = page.find_element(By.ID, "happenings").get_attribute("textContent") or ""
    assert "connect" in logged
    shot(page, "sent")


def test_killing_db_from_the_page_shows_it_down_and_what_a_client_then_sees(
    page: WebDriver, lab: Engine
) -> None:
    click(page, '.process[data-process="db"]')
    click(page, '#fault-buttons button[data-fault="kill"]')
    wait_for(lambda: lab.states()["db"].status == "exited", "db to be killed", timeout=30)
    killed_at = time.monotonic()
    until(
        page,
        "document.querySelector('.process[data-process=\"db\"]').classList.contains('down')",
        "db drawn as down",
        timeout=5,
    )
    assert time.monotonic() - killed_at < 3  # within a second or so of Docker saying so
    # The failure matrix: a process killed on a live host: a new connection is refused.
    assert "failed: connect: ECONNREFUSED" in send_from_page(page, "db", "PING")
    shot(page, "db-killed")
    page.find_element(By.ID, "restore-button").click()
    # Docker says "running" before db listens; the page says "restored" once the lab is
    # healthy again (restore waits for every healthcheck), and only then may PING answer.
    until(
        page,
        "document.getElementById('fault-result').textContent.startsWith('restored')",
        "the page to say the lab is restored",
        timeout=90,
    )
    until(
        page,
        "!document.querySelector('.process[data-process=\"db\"]').classList.contains('down')",
        "db back",
        timeout=5,
    )
    assert send_from_page(page, "db", "PING") == "PONG"


def test_the_seeds_broken_pipe_happens_on_the_page(page: WebDriver) -> None:
    hold = page.find_element(By.ID, "send-hold")
    if not hold.is_selected():
        hold.click()
    try:
        assert send_from_page(page, "tcp-shout", "ping") == "PING"
        click(page, '.process[data-process="tcp-shout"]')
        click(page, '#fault-buttons button[data-fault="kill"]')
        until(
            page,
            "document.querySelector('.process[data-process=\"tcp-shout\"]')"
            ".classList.contains('down')",
            "tcp-shout drawn as down",
        )
        # The seed: the dead server's FIN (EOF), then BrokenPipeError on the same socket.
        assert "failed: recv: eof" in send_from_page(page, "tcp-shout", "still there?")
        assert "failed: send: EPIPE" in send_from_page(page, "tcp-shout", "still there?")
        until(
            page,
            "[...document.querySelectorAll('#happenings li')].some(li => "
            "li.textContent.includes('EPIPE'))",
            "EPIPE in what happened",
        )
        shot(page, "broken-pipe")
    finally:
        hold.click()
        page.find_element(By.ID, "release-button").click()
        page.find_element(By.ID, "restore-button").click()
    until(
        page,
        "!document.querySelector('.process[data-process=\"tcp-shout\"]').classList.contains('down')",
        "tcp-shout back",
        timeout=90,
    )


def test_ctrl_c_undoes_what_the_page_set(net: socklab.Lab, browser: WebDriver, lab: Engine) -> None:
    proc, address = start_web()
    try:
        browser.get(address)
        until(browser, "document.querySelectorAll('.process').length > 0", "the topology")
        click(browser, '.process[data-process="tcp-shout"]')
        click(browser, '#fault-buttons button[data-fault="pause"]')
        wait_for(lambda: lab.states()["tcp-shout"].status == "paused", "the pause", timeout=30)
    finally:
        code, out = stop_web(proc)
    assert code == 0, out
    assert lab.states()["tcp-shout"].status == "running"


def test_a_recorded_run_replays_with_no_lab(browser: WebDriver) -> None:
    proc, address = start_web("--replay-only", str(RECORDED))
    try:
        browser.get(address)
        until(browser, "document.getElementById('replay-select').options.length > 0", "results")
        browser.find_element(By.XPATH, "//summary[text()='Recorded runs']").click()
        Select(browser.find_element(By.ID, "replay-select")).select_by_index(0)
        Select(browser.find_element(By.ID, "replay-speed")).select_by_value("1")
        browser.find_element(By.ID, "replay-button").click()
        until(browser, "document.querySelectorAll('.host').length === 3", "the recorded hosts")
        until(
            browser,
            "[...document.querySelectorAll('#happenings li')].some(li => "
            "li.textContent.includes('ECONNREFUSED'))",
            "the recorded refusal",
            timeout=30,
        )
        assert "pick a recorded run" in browser.find_element(By.ID, "notice").text
        shot(browser, "replay")
    finally:
        code, _ = stop_web(proc)
    assert code == 0


def test_no_token_or_a_foreign_host_is_refused() -> None:
    proc, address = start_web("--replay-only")
    try:
        base, token = address.split("/?token=")

        def status(path: str, headers: dict[str, str]) -> int:
            request = urllib.request.Request(base + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert status("/api/state", {"X-Lab-Token": token}) == 200
        assert status("/api/state", {}) == 403
        assert status("/api/state", {"X-Lab-Token": "guessed"}) == 403
        assert status("/", {}) == 403
        port = base.rsplit(":", 1)[1]
        assert status("/api/state", {"X-Lab-Token": token, "Host": f"evil.example:{port}"}) == 421
    finally:
        stop_web(proc)


def test_the_page_loads_nothing_from_elsewhere() -> None:
    static = Path(socklab.__file__).parent / "web" / "static"
    for path in static.iterdir():
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # a name, not a load
        assert "http://" not in text
        assert "https://" not in text
        assert "//cdn" not in text
