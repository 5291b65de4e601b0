"""CSV cells no spreadsheet runs as a formula: names and texts come from students' files."""

from __future__ import annotations


def cell(value: object) -> str:
    """A CSV cell no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
