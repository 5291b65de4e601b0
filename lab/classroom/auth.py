"""Who a request is from, and whether it may do what it asks.

Every request but the sign-in page and static files must carry a live session
cookie, which names one student (or the teacher): everything a student's request
touches is looked up under that student, never under an id the request names.
A browser's request must come from this server's own origin (its Host, and its
Origin when it sends one); every request that changes something must carry the
session's CSRF token in a header, which a page of another site cannot read.
Sign-in attempts are rate-limited: wrong tokens per address, and all attempts in all
(a token has 192 random bits: the limit is what keeps a guesser's scrypts from
costing the server, not what keeps tokens safe).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lab.classroom import tokens
from lab.classroom.store import Store
from lab.web.guard import Guard

STUDENT_COOKIE = "socklab_session"
TEACHER_COOKIE = "socklab_teacher"
CSRF_HEADER = "X-CSRF-Token"
SESSION_SECONDS = 12 * 3600
DUMMY = tokens.hash_secret("not a token")  # checked against when the id is unknown


@dataclass(frozen=True)
class Who:
    student: str  # "" for the teacher
    session: str  # the session id, as the cookie holds it

    @property
    def teacher(self) -> bool:
        return self.student == ""


@dataclass
class Gate:
    store: Store
    hosts: set[str]  # Host header values that name this server ("127.0.0.1:8800", ...)
    origins: set[str]  # Origin values of its own pages ("http://127.0.0.1:8800", ...)
    key: bytes  # for CSRF tokens: kept across restarts, so open pages keep working
    teacher_hash: str = ""
    per_address: tokens.Limiter = field(default_factory=lambda: tokens.Limiter(10, 10))
    overall: tokens.Limiter = field(default_factory=lambda: tokens.Limiter(300, 60))
    teacher_sessions: dict[str, float] = field(default_factory=dict)  # hash -> expiry

    @classmethod
    def for_address(
        cls, store: Store, bind: str, port: int, key: bytes, public_url: str = ""
    ) -> Gate:
        hosts = Guard(port, bind).hosts  # the names `lab web` answers to, the same way
        origins = {f"http://{h}" for h in hosts}
        if public_url:
            parts = urlsplit(public_url.lower())  # as browsers send Host and Origin
            netloc = without_default_port(parts.scheme, parts.netloc)
            hosts.add(netloc)
            origins.add(f"{parts.scheme}://{netloc}")
        return cls(store, hosts, origins, key)

    # --- where from ---

    def host_ok(self, host: str | None) -> bool:
        return host is not None and host.lower() in self.hosts

    def origin_ok(self, origin: str | None, required: bool = False) -> bool:
        """A browser sends Origin with every POST and WebSocket; it must be ours. Without
        one (curl, a script) the CSRF header still has to be right."""
        if origin is None:
            return not required
        return origin.lower() in self.origins

    # --- signing in ---

    def new_teacher_token(self) -> str:
        secret = tokens.new_secret()
        self.teacher_hash = tokens.hash_secret(secret)
        self.teacher_sessions.clear()
        return secret

    def throttled(self, address: str, now: float | None = None) -> float:
        """0 if a sign-in attempt from ``address`` may go ahead (one of its attempts spent
        before the scrypt, so that attempts at once cannot all slip through), else the
        seconds to wait. ``succeeded`` gives it back: only wrong tokens count against an
        address, so a class behind one NAT or one reverse proxy signs in together."""
        now = time.monotonic() if now is None else now
        return self.overall.wait("*", now) or self.per_address.allow(address, now)

    def succeeded(self, address: str, now: float | None = None) -> None:
        self.per_address.refund(address, time.monotonic() if now is None else now)

    def failed(self, now: float | None = None) -> None:
        """A wrong token: one of the few the whole server takes a minute spent."""
        self.overall.allow("*", time.monotonic() if now is None else now)

    def sign_in(self, token: str) -> Who | None:
        """A new session for a valid token; None for anything else (scrypt: call in a thread)."""
        student, secret = tokens.split(token)
        stored = self.store.token_hash(student) if student else None
        # An unknown id costs an scrypt too: the time taken does not tell who is enrolled.
        if not tokens.verify(secret, stored or DUMMY) or stored is None:
            return None
        session = secrets.token_urlsafe(32)
        self.store.open_session(
            tokens.session_hash(session), student, time.time() + SESSION_SECONDS
        )
        return Who(student, session)

    def teacher_sign_in(self, secret: str) -> Who | None:
        if not tokens.verify(secret.strip(), self.teacher_hash):
            return None
        session = secrets.token_urlsafe(32)
        self.teacher_sessions[tokens.session_hash(session)] = time.time() + SESSION_SECONDS
        return Who("", session)

    # --- every request ---

    def student(self, cookie: str | None) -> Who | None:
        if not cookie:
            return None
        found = self.store.session(tokens.session_hash(cookie), time.time())
        return Who(found, cookie) if found else None

    def teacher(self, cookie: str | None) -> Who | None:
        if not cookie:
            return None
        expiry = self.teacher_sessions.get(tokens.session_hash(cookie), 0.0)
        return Who("", cookie) if expiry > time.time() else None

    def csrf(self, who: Who) -> str:
        return tokens.csrf_for(self.key, who.session)

    def csrf_ok(self, who: Who, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given, self.csrf(who))

    def sign_out(self, who: Who) -> None:
        hashed = tokens.session_hash(who.session)
        if who.teacher:
            self.teacher_sessions.pop(hashed, None)
        else:
            self.store.close_session(hashed)


def without_default_port(scheme: str, netloc: str) -> str:
    """``x:80`` for http and ``x:443`` for https as browsers write them in Host and
    Origin: without the port (a public URL that spells it out must still match)."""
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return netloc.removesuffix(default) if default else netloc
