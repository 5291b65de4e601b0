"""A check's result for people: one line per property, and the evidence on request."""

from __future__ import annotations

from lab.check.properties import by_id
from lab.experiments.model import Check, Result

MARKS = {"held": "ok  ", "failed": "FAIL", "not judged": " -- "}


def status(check: Check) -> str:
    if not check.judged:
        return "not judged"
    return "held" if check.held else "failed"


def lines(result: Result, explain: bool = False) -> list[str]:
    """One line per property; with ``explain``, what was observed, why it matters, the fix."""
    stream = result.facts.get("check", {}).get("protocol") == "tcp"
    table = by_id(stream)
    width = max((len(c.id) for c in result.checks), default=0)
    out = []
    for c in result.checks:
        word = status(c)
        out.append(f"  {MARKS[word]}  {c.id:<{width}}  {c.claim}")
        if explain or word == "not judged":
            label = "why" if word == "not judged" else "seen"
            out.append(f"  {'':4}  {'':<{width}}  {label}: {c.observed}")
        if explain and c.id in table and word != "held":
            prop = table[c.id]
            out.append(f"  {'':4}  {'':<{width}}  lesson: {prop.why}")
            out.append(f"  {'':4}  {'':<{width}}  fix: {prop.fix}")
    return out


def summary(result: Result) -> str:
    words = [status(c) for c in result.checks]
    parts = [f"{words.count('held')} held", f"{words.count('failed')} failed"]
    if words.count("not judged"):
        parts.append(f"{words.count('not judged')} not judged")
    return (
        f"{result.facts['check']['file']} as {result.facts['check']['role']}: "
        + ", ".join(parts)
        + f" ({result.duration_s:.0f} s)"
    )
