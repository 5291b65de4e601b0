"""A class's grades as files: two CSVs for a spreadsheet, one HTML page for people.

The standard library's csv writes the spreadsheets; the page is one file with its
style and its chart (an inline SVG) inside, no script and nothing fetched, so it opens
from a USB stick, a mail attachment or a course site alike. Every name in it comes from
students' files: it is escaped on the page, and a cell a spreadsheet would take for a
formula (=, +, -, @ first) is quoted with a leading apostrophe in the CSVs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from html import escape
from pathlib import Path

from lab.grading.aggregate import ClaimRow, StudentRow
from lab.grading.cells import cell
from lab.grading.collect import Collected

STUDENT_COLUMNS = (
    "student",
    "experiments_run",
    "distinct_experiments",
    "predictions_right",
    "predictions_total",
    "share_right",
    "predicted_wrong",
    "claims_not_held_on_their_lab",
)
CLAIM_COLUMNS = (
    "experiment",
    "claim",
    "text",
    "students_predicted",
    "predicted_right",
    "share_right",
    "expected_to_hold",
    "held_on_their_labs",
)


def share_text(share: float | None) -> str:
    return "" if share is None else f"{share:.2f}"


def students_csv(rows: Sequence[StudentRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STUDENT_COLUMNS)
    for r in rows:
        writer.writerow(
            cell(v)
            for v in (
                r.student,
                r.runs,
                r.experiments,
                r.right,
                r.total,
                share_text(r.share),
                "; ".join(r.wrong),
                "; ".join(r.not_held),
            )
        )
    return out.getvalue()


def claims_csv(rows: Sequence[ClaimRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CLAIM_COLUMNS)
    for r in rows:
        writer.writerow(
            cell(v)
            for v in (
                r.experiment,
                r.claim,
                r.text,
                r.students,
                r.right,
                share_text(r.share),
                r.expected_hold,
                r.held,
            )
        )
    return out.getvalue()


# --- the page ---------------------------------------------------------------------------

BAR = 20
GAP = 6
LABEL_WIDTH = 300
CHART_WIDTH = 420


def colour(share: float) -> str:
    return "#c0392b" if share < 0.5 else "#e67e22" if share < 0.75 else "#27ae60"


def chart(rows: Sequence[ClaimRow]) -> str:
    """Horizontal bars: the share of the class that predicted each claim right."""
    height = len(rows) * (BAR + GAP) + 30
    width = LABEL_WIDTH + CHART_WIDTH + 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="chart-title">',
        '<title id="chart-title">Share of the class that predicted each claim right</title>',
    ]
    for tick in (0, 25, 50, 75, 100):
        x = LABEL_WIDTH + CHART_WIDTH * tick / 100
        parts.append(
            f'<line x1="{x:.0f}" y1="0" x2="{x:.0f}" y2="{height - 20}" stroke="#ddd"/>'
            f'<text x="{x:.0f}" y="{height - 6}" font-size="11" text-anchor="middle" '
            f'fill="#666">{tick}%</text>'
        )
    for i, r in enumerate(rows):
        y = i * (BAR + GAP)
        w = CHART_WIDTH * r.share
        label = escape(r.key)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR - 6}" font-size="12" '
            f'text-anchor="end">{label}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{w:.1f}" height="{BAR}" '
            f'fill="{colour(r.share)}"><title>{label}: {r.right} of {r.students} right'
            "</title></rect>"
            f'<text x="{LABEL_WIDTH + w + 6:.1f}" y="{y + BAR - 6}" font-size="11" '
            f'fill="#333">{r.right}/{r.students}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 2em; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.low { color: #c0392b; font-weight: 600; }
code { font-size: 13px; }
"""


def html_page(
    title: str,
    collected: Collected,
    students: Sequence[StudentRow],
    claims: Sequence[ClaimRow],
) -> str:
    def td(value: object, numeric: bool = False, css: str = "") -> str:
        classes = " ".join(c for c in ("n" if numeric else "", css) if c)
        attribute = f' class="{classes}"' if classes else ""
        return f"<td{attribute}>{escape(str(value))}</td>"

    claim_rows = "".join(
        "<tr>"
        + td(r.experiment)
        + f"<td><code>{escape(r.claim)}</code></td>"
        + td(r.text)
        + td(r.students, True)
        + td(r.right, True)
        + td(f"{100 * r.share:.0f}%", True, "low" if r.share < 0.5 else "")
        + td(r.expected_hold, True)
        + td(r.held, True)
        + "</tr>"
        for r in claims
    )
    student_rows = "".join(
        "<tr>"
        + td(r.student)
        + td(r.runs, True)
        + td(r.experiments, True)
        + td(f"{r.right} of {r.total}", True)
        + td("" if r.share is None else f"{100 * r.share:.0f}%", True)
        + td(", ".join(r.wrong))
        + td(", ".join(r.not_held))
        + "</tr>"
        for r in students
    )
    skipped = "".join(
        f"<li><code>{escape(s.path)}</code>: {escape(s.reason)}</li>" for s in collected.skipped
    )
    summary = (
        f"{len(collected.submissions)} results with predictions from {len(students)} students; "
        f"{len(collected.unpredicted)} results without predictions; "
        f"{len(collected.skipped)} files skipped."
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p id="summary">{escape(summary)} A student's prediction of an experiment is their
first run of it; every run counts as an experiment run.</p>
<h2>Which claims the class got wrong</h2>
<p>The share of the students who predicted each claim that predicted it right, the
misconceptions first.</p>
<figure id="chart">{chart(claims)}</figure>
<h2>Per claim</h2>
<table id="per-claim">
<thead><tr><th>experiment</th><th>claim</th><th>text</th><th>predicted by</th><th>right</th>
<th>share right</th><th>expected to hold</th><th>held on their labs</th></tr></thead>
<tbody>{claim_rows}</tbody></table>
<h2>Per student</h2>
<table id="per-student">
<thead><tr><th>student</th><th>experiments run</th><th>distinct</th><th>predictions right</th>
<th>share</th><th>predicted wrong</th><th>did not hold on their lab</th></tr></thead>
<tbody>{student_rows}</tbody></table>
<h2>Files skipped</h2>
<ul id="skipped">{skipped or "<li>none</li>"}</ul>
</body></html>
"""


def write(
    folder: Path,
    title: str,
    collected: Collected,
    students: Sequence[StudentRow],
    claims: Sequence[ClaimRow],
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "students.csv", folder / "claims.csv", folder / "report.html"]
    paths[0].write_text(students_csv(students), encoding="utf-8")
    paths[1].write_text(claims_csv(claims), encoding="utf-8")
    paths[2].write_text(html_page(title, collected, students, claims), encoding="utf-8")
    return paths
