"""Who is in the class (pure): a CSV of student ids and display names.

    id,name
    ada,Ada Lovelace
    bob,Bob Kahn

The header is optional. An id names the student's lab too, so it follows the
rules of a lab's name (lowercase letters, digits, - and _).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from lab.errors import UsageError

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_STUDENTS = 1000


@dataclass(frozen=True)
class Student:
    id: str
    name: str


def parse(text: str, source: str = "the roster") -> list[Student]:
    """The students of a roster, in its order; UsageError naming the line at fault."""
    students: list[Student] = []
    seen: set[str] = set()
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not students and not seen and [c.lower() for c in cells[:2]] == ["id", "name"]:
            seen.add("")  # the header, before any student: once only
            continue
        if len(cells) > 2:
            raise UsageError(
                f"{source}, line {number}: {len(cells)} fields", "two: id,name (quote a comma)"
            )
        student_id, name = cells[0], cells[1] if len(cells) > 1 else ""
        if not _ID.match(student_id):
            raise UsageError(
                f"{source}, line {number}: id {student_id!r} is not one a lab can be named",
                "lowercase letters, digits, - and _ (up to 40), starting with a letter or digit",
            )
        if student_id in seen:
            raise UsageError(f"{source}, line {number}: id {student_id!r} is there twice")
        seen.add(student_id)
        students.append(Student(student_id, name or student_id))
    if not students:
        raise UsageError(f"{source} names no student", "one line per student: id,name")
    if len(students) > MAX_STUDENTS:
        raise UsageError(f"{source} names {len(students)} students; at most {MAX_STUDENTS}")
    return students


def load(path: Path) -> list[Student]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV may carry a BOM
    except OSError as exc:
        raise UsageError(f"cannot read the roster {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the roster {path} is not UTF-8 text", "save it as CSV UTF-8") from None
    return parse(text, str(path))
