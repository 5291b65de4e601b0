"""`lab grade` as an instructor runs it (no Docker), and its page in headless Chromium."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pure.test_grading import ALL_TRUE, a_result, write

pytestmark = pytest.mark.local

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def a_class(folder: Path) -> Path:
    """Three students' results in folders of their own, one hand-edited file, one broken."""
    held = {"same-ip": True, "tcp-refused": True, "udp-silent": False}
    write(folder, "ada/dispatch-1.json", a_result("Ada", ALL_TRUE, held))
    write(folder, "bob/dispatch-1.json", a_result("Bob", {"udp-silent": False}, held))
    write(folder, "cy/dispatch-1.json", a_result("Cy", {"udp-silent": True}, held))
    edited = a_result("Cy", {"same-ip": False}, held)
    edited["predictions"]["right"] = 1
    write(folder, "cy/dispatch-2.json", edited)
    write(folder, "cy/broken.json", "{")
    return folder


def grade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab", "grade", *args],
        cwd=ROOT,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        text=True,
        capture_output=True,
        timeout=60,
    )


def test_grade_writes_both_csvs_and_the_page_and_names_what_it_skipped(tmp_path: Path) -> None:
    results = a_class(tmp_path / "class")
    out = tmp_path / "grades"
    done = grade(str(results), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"skipped {results / 'cy/broken.json'}: not JSON" in done.stdout
    assert f"skipped {results / 'cy/dispatch-2.json'}: edited: predictions say 1" in done.stdout
    assert "3 results with predictions from 3 students, 3 claims" in done.stdout
    assert "most often predicted wrong: own-dispatch/udp-silent (1 of 3 right)" in done.stdout
    students = list(csv.DictReader((out / "students.csv").open()))
    assert [(s["student"], s["predictions_right"], s["predictions_total"]) for s in students] == [
        ("Ada", "2", "3"),
        ("Bob", "1", "1"),
        ("Cy", "0", "1"),
    ]
    assert students[0]["claims_not_held_on_their_lab"] == "own-dispatch/udp-silent"
    claims = list(csv.DictReader((out / "claims.csv").open()))
    assert claims[0]["claim"] == "udp-silent"
    assert claims[0]["share_right"] == "0.33"
    assert (out / "report.html").read_text().startswith("<!doctype html>")


def test_grade_of_a_missing_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = grade(str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"lab: {tmp_path / 'nowhere'}: no such file or folder"
    ]


@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="no Chromium and chromedriver"
)
def test_the_page_opens_in_a_browser_with_its_per_claim_table(tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    out = tmp_path / "grades"
    assert grade(str(a_class(tmp_path / "class")), "--out", str(out)).returncode == 0
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--window-size=1200,900"):
        options.add_argument(flag)
    options.binary_location = str(CHROMIUM)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get((out / "report.html").as_uri())
        table = driver.find_element(By.ID, "per-claim")
        rows = [
            [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]
        assert [r[1] for r in rows] == ["udp-silent", "same-ip", "tcp-refused"]
        assert rows[0][5] == "33%"
        bars = driver.find_elements(By.CSS_SELECTOR, "#chart svg rect")
        assert len(bars) == 3
        assert all(b.size["height"] > 0 for b in bars)
        students = driver.find_elements(By.CSS_SELECTOR, "#per-student tbody tr")
        assert [s.find_element(By.TAG_NAME, "td").text for s in students] == ["Ada", "Bob", "Cy"]
        # Everything the page needs is inside it: the browser fetched nothing else.
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert fetched == []
    finally:
        driver.quit()
