"""Sign-in secrets (pure): tokens handed out once, only their scrypt hashes kept.

A student's token is ``ID.SECRET``: the id says whose hash to check it against, and
the secret (24 random bytes) is what proves it. A token is checked with scrypt
(costly on purpose, so a stolen database does not give tokens back); the session it
opens is a random id of its own, kept as its SHA-256 (it is as random as a key, so a
fast hash is enough), checked on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

# scrypt's parameters: about 16 MiB and some tens of ms per check.
N, R, P = 2**14, 8, 1
SALT_BYTES = 16


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def issue(student: str) -> tuple[str, str]:
    """A new token for a student, and the hash to keep of it."""
    secret = new_secret()
    return f"{student}.{secret}", hash_secret(secret)


def split(token: str) -> tuple[str, str]:
    """(student id, secret) of a student's token; ("", "") if it is not one."""
    student, dot, secret = token.strip().rpartition(".")
    return (student, secret) if dot and student and secret else ("", "")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """``scrypt$N$R$P$SALT$HASH``: everything needed to check a secret again."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify(secret: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        again = hashlib.scrypt(
            secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
        expected = _unb64(digest)
    except (ValueError, MemoryError):  # a damaged hash (binascii.Error is a ValueError)
        return False
    return hmac.compare_digest(again, expected)


def session_hash(session: str) -> str:
    return hashlib.sha256(session.encode()).hexdigest()


def csrf_for(key: bytes, session: str) -> str:
    """The CSRF token of a session: derived, so nothing more is stored."""
    return hmac.new(key, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass
class Limiter:
    """At most ``burst`` attempts per key, refilled at ``per_minute`` (a token bucket).
    The clock is given to each call, so a test can drive time."""

    per_minute: float = 10.0
    burst: float = 10.0
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key: (level, at)

    def _level(self, key: str, now: float) -> float:
        level, at = self.buckets.get(key, (self.burst, now))
        return min(self.burst, level + (now - at) * self.per_minute / 60)

    def wait(self, key: str, now: float) -> float:
        """0 if an attempt would be allowed now (nothing spent), else the seconds to wait."""
        level = self._level(key, now)
        return 0.0 if level >= 1 else (1 - level) * 60 / self.per_minute

    def allow(self, key: str, now: float) -> float:
        """0 if allowed (one attempt spent), else the seconds until the next is."""
        level = self._level(key, now)
        if level >= 1:
            self.buckets[key] = (level - 1, now)
            if len(self.buckets) > 10000:  # many addresses: forget the full buckets
                self.buckets = {k: v for k, v in self.buckets.items() if v[0] < self.burst - 1}
            return 0.0
        self.buckets[key] = (level, now)
        return (1 - level) * 60 / self.per_minute

    def refund(self, key: str, now: float) -> None:
        """Give back an attempt spent (it turned out not to count)."""
        self.buckets[key] = (min(self.burst, self._level(key, now) + 1), now)
