"""lab class serve / tokens / grades: a class in the browser, one server holding Docker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lab.cli.context import Invocation
from lab.errors import UsageError

DEFAULT_PORT = 8800
DEFAULT_DATA = Path("class")


def register(commands: Any) -> None:
    group = commands.add_parser(
        "class",
        help="a class in the browser: one server holds Docker, each student their own lab",
        description="The class server (docs/classroom.md): run by the teacher, the only "
        "process that talks to Docker. Each student on the roster signs in with a link of "
        "their own and works in the browser on their own named lab: topology and traffic, "
        "predictions then runs (queued to what the machine holds), checks of a server they "
        "upload, and a terminal in their client host. Predictions and results are stored "
        "and judged by the server, in an SQLite database; grades come from it.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="serve the class until Ctrl-C (labs start as students arrive)",
        description="Issue sign-in links to students who have none (DATA/sign-in.csv), "
        "print the teacher's link, and serve. Ctrl-C stops it: running runs are marked "
        "interrupted and every student's lab is removed (--keep-labs leaves them). Binds "
        "127.0.0.1: for a real network, put a reverse proxy with TLS in front and give "
        "--public-url (docs/classroom.md).",
    )
    serve.add_argument("--roster", type=Path, required=True, metavar="FILE", help="CSV: id,name")
    _data(serve)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="where to listen (default 127.0.0.1: a reverse proxy on this machine forwards)",
    )
    serve.add_argument(
        "--public-url",
        default="",
        metavar="URL",
        help="the address students open, as the reverse proxy serves it "
        "(https://class.example.org): links use it, and its Origin is accepted",
    )
    serve.add_argument(
        "--runs-at-once",
        type=int,
        default=0,
        metavar="N",
        help="experiments and checks run together; the rest wait in a queue "
        "(default: the machine's CPU count)",
    )
    serve.add_argument(
        "--idle-stop",
        type=float,
        default=60.0,
        metavar="MINUTES",
        help="remove a lab after this long without action (0: never; default 60); "
        "it starts again on the student's next action",
    )
    serve.add_argument(
        "-f",
        "--file",
        dest="files",
        action="append",
        type=Path,
        default=[],
        help="the students' topology (default: the built-in lab)",
    )
    serve.add_argument(
        "--keep-labs", action="store_true", help="leave the students' labs running on exit"
    )
    serve.set_defaults(handler=cmd_serve)

    issue = actions.add_parser(
        "tokens",
        help="reissue or revoke students' sign-in tokens (the server may be running)",
        description="A reissued token replaces the old one, whose sessions end at once; a "
        "revoked student cannot sign in until reissued. New links go to DATA/sign-in.csv.",
    )
    _data(issue)
    issue.add_argument("--reissue", nargs="+", default=[], metavar="ID", help="new tokens")
    issue.add_argument("--revoke", nargs="+", default=[], metavar="ID", help="no token")
    issue.add_argument(
        "--url", default="", help="the server's address, for the links (default: where it served)"
    )
    issue.set_defaults(handler=cmd_tokens)

    grades = actions.add_parser(
        "grades",
        help="the class's grades from the server's database: the CSVs and report of `grade`",
    )
    _data(grades)
    grades.add_argument("--out", type=Path, default=Path("grades"), help="default ./grades")
    grades.set_defaults(handler=cmd_grades)


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="DIR",
        help="the class's database and sign-in links (default ./class)",
    )


def cmd_serve(s: Invocation, args: argparse.Namespace) -> int:
    from lab.classroom.serve import Settings, serve

    if args.runs_at_once < 0 or args.idle_stop < 0:
        raise UsageError("--runs-at-once and --idle-stop must be 0 or more")
    settings = Settings(
        roster=args.roster,
        data=args.data,
        bind=args.bind,
        port=args.port,
        capacity=args.runs_at_once,
        idle_minutes=args.idle_stop,
        files=tuple(args.files),
        public_url=args.public_url,
        keep_labs=args.keep_labs,
    )
    if args.bind not in ("127.0.0.1", "localhost", "::1") and not args.public_url:
        raise UsageError(
            f"--bind {args.bind} needs --public-url: the address students open, which the "
            "server must accept in Host and Origin",
            "better: keep 127.0.0.1 and put a reverse proxy with TLS in front (docs/classroom.md)",
        )
    if args.public_url.startswith("http://"):
        print(
            f"{s.prog}: warning: {args.public_url} is not TLS: sign-in tokens and sessions "
            "cross the network in clear; put a reverse proxy with TLS in front",
            file=sys.stderr,
        )

    def say(line: str) -> None:
        s.print(line, plain=True)
        sys.stdout.flush()

    serve(settings, say)
    s.print("class server stopped")
    return 0


def _store(args: argparse.Namespace) -> Any:
    from lab.classroom.serve import DATABASE
    from lab.classroom.store import Store

    path = args.data / DATABASE
    if not path.exists():
        raise UsageError(f"no class database in {args.data}", "start one with `lab class serve`")
    return Store(path)


def cmd_tokens(s: Invocation, args: argparse.Namespace) -> int:
    from lab.classroom.serve import issue, served_address

    if not args.reissue and not args.revoke:
        raise UsageError("nothing to do", "give --reissue ID... or --revoke ID...")
    store = _store(args)
    known = {r.id for r in store.students()}
    unknown = sorted(set(args.reissue + args.revoke) - known)
    if unknown:
        raise UsageError(f"not in the class: {', '.join(unknown)}")
    for student in args.revoke:
        store.set_token(student, None)
        s.print(f"revoked {student}: signed out, and cannot sign in until reissued")
    if args.reissue:
        base = args.url.rstrip("/") or served_address(args.data)
        if not base:
            raise UsageError("this class was never served: no address for the links", "give --url")
        path = issue(store, args.reissue, args.data, base)
        s.print(f"new links for {', '.join(args.reissue)} in {path}; their old ones end now")
    store.close()
    return 0


def cmd_grades(s: Invocation, args: argparse.Namespace) -> int:
    from lab.classroom import grades

    store = _store(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in grades.files(store).items():
        (args.out / name).write_text(text, encoding="utf-8")
    store.close()
    s.print(f"students.csv, claims.csv, checks.csv and report.html in {args.out}")
    return 0
