"""Marks each test with its tier, from the folder it lives in."""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = {"pure": pytest.mark.pure, "local": pytest.mark.local, "docker": pytest.mark.docker}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(TIERS[tier])
