"""Choosing the Python base image, and finding a Debian mirror in apt's sources."""

from __future__ import annotations

import pytest

from lab.engine.base_image import OFFICIAL, Plan, debian_mirror, local_tag, plan
from lab.errors import BaseImageError

LOCAL = "socklab-base:bookworm-test"


def choose(override: str | None, present: set[str], pullable: set[str]) -> tuple[Plan, list[str]]:
    asked: list[str] = []

    def is_present(name: str) -> bool:
        asked.append(f"present {name}")
        return name in present

    def pull(name: str) -> bool:
        asked.append(f"pull {name}")
        return name in pullable

    return plan(override, is_present, pull, LOCAL), asked


def test_official_image_already_present_is_used_without_network() -> None:
    chosen, asked = choose(None, {OFFICIAL}, set())
    assert chosen == Plan(OFFICIAL, "use", "official")
    assert asked == [f"present {OFFICIAL}"]


def test_official_image_is_pulled_where_a_registry_answers() -> None:
    chosen, asked = choose(None, set(), {OFFICIAL})
    assert chosen == Plan(OFFICIAL, "use", "official")
    assert asked == [f"present {OFFICIAL}", f"pull {OFFICIAL}"]


def test_offline_with_a_local_base_reuses_it() -> None:
    chosen, _ = choose(None, {LOCAL}, set())
    assert chosen == Plan(LOCAL, "use", "local")


def test_offline_without_any_base_builds_one() -> None:
    chosen, _ = choose(None, set(), set())
    assert chosen == Plan(LOCAL, "build", "local")


def test_override_wins_and_must_exist() -> None:
    assert choose("mine:1", {"mine:1"}, set())[0] == Plan("mine:1", "use", "override")
    assert choose("mine:1", set(), {"mine:1"})[0] == Plan("mine:1", "use", "override")
    with pytest.raises(BaseImageError, match="neither present nor pullable"):
        choose("mine:1", {OFFICIAL}, {OFFICIAL})


def test_local_tag_changes_with_the_package_list() -> None:
    assert local_tag(["python3"]) == local_tag(["python3"])
    assert local_tag(["python3"]) != local_tag(["python3", "curl"])
    assert local_tag(["a", "b"]) == local_tag(["b", "a"])


@pytest.mark.parametrize(
    ("sources", "mirror"),
    [
        (["deb http://mirror.example/debian bookworm main"], "http://mirror.example/debian"),
        (
            ["deb [arch=amd64 signed-by=/k.gpg] https://m.example/debian/ bookworm main"],
            "https://m.example/debian/",
        ),
        (
            [
                "deb http://security.example/debian-security bookworm-security main\n"
                "deb http://m.example/debian bookworm main"
            ],
            "http://m.example/debian",
        ),
        (
            [
                "Types: deb\nURIs: http://m.example/debian-security\nSuites: bookworm-security\n\n"
                "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\n"
            ],
            "http://m.example/debian",
        ),
        (["deb https://other.example/apt nodistro main"], None),
        ([], None),
    ],
)
def test_debian_mirror(sources: list[str], mirror: str | None) -> None:
    assert debian_mirror(sources) == mirror
