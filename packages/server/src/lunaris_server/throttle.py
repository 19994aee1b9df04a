"""Rate limits on the two doors anyone can knock on: console login and agent registration.

Token buckets per key, in this process's memory: cheap, and a restart forgets them, which
only gives an attacker one more burst. With several server processes each keeps its own
buckets, so the fleet-wide limit is the per-process one times the number of processes.

- Login: every attempt spends from its address's bucket (a password check is deliberately
  slow, so a flood of attempts is also a flood of CPU). Failures spend from the
  (username, address) bucket and from the username's own, larger one: five wrong passwords
  from one place slow that place to one try a minute, while many places together cannot
  lock the real user out for long.
- Registration: every attempt spends from its address's bucket (generous: a whole office
  behind one NAT address enrols at once after a rollout) and from the presented secret's
  bucket; attempts with a wrong secret also spend from a small per-address bucket.
"""

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lunaris_server.errors import TooManyRequests


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``burst`` tokens per key, refilled at ``per_minute``; one token per event."""

    def __init__(
        self,
        *,
        burst: int,
        per_minute: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.per_s = per_minute / 60
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds until the key may act again; 0 when it may now."""
        bucket = self._refilled(key)
        if bucket is None or bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self.per_s

    def spend(self, key: str) -> None:
        bucket = self._refilled(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), self._clock())
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                # Bounded memory: the key idle longest goes (it has refilled the most).
                self._buckets.popitem(last=False)
        bucket.tokens -= 1
        self._buckets.move_to_end(key)

    def _refilled(self, key: str) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        now = self._clock()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_s)
        bucket.at = now
        if bucket.tokens >= self.burst:
            del self._buckets[key]  # full again: the same as never seen
            return None
        return bucket


def _check(*limits: tuple[RateLimiter, str], message: str) -> None:
    wait = max(limiter.retry_after(key) for limiter, key in limits)
    if wait > 0:
        raise TooManyRequests(message, retry_after_s=wait)


class LoginThrottle:
    FAILURES_BURST = 5
    FAILURES_PER_MINUTE = 1
    USER_FAILURES_BURST = 50
    USER_FAILURES_PER_MINUTE = 10

    def __init__(self, *, attempts_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self._by_address = RateLimiter(
            burst=attempts_per_minute, per_minute=attempts_per_minute, clock=clock
        )
        self._failures = RateLimiter(
            burst=self.FAILURES_BURST, per_minute=self.FAILURES_PER_MINUTE, clock=clock
        )
        self._user_failures = RateLimiter(
            burst=self.USER_FAILURES_BURST, per_minute=self.USER_FAILURES_PER_MINUTE, clock=clock
        )

    def attempt(self, *, address: str | None, username: str) -> None:
        """Raises TooManyRequests, or counts the attempt."""
        address = address or "?"
        _check(
            (self._by_address, address),
            (self._failures, f"{username}\0{address}"),
            (self._user_failures, username),
            message="too many login attempts; try again later",
        )
        self._by_address.spend(address)

    def failed(self, *, address: str | None, username: str) -> None:
        self._failures.spend(f"{username}\0{address or '?'}")
        self._user_failures.spend(username)


class RegistrationThrottle:
    FAILURES_BURST = 10
    FAILURES_PER_MINUTE = 10

    def __init__(
        self,
        *,
        attempts_per_minute: int,
        per_secret_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._by_address = RateLimiter(
            burst=attempts_per_minute, per_minute=attempts_per_minute, clock=clock
        )
        self._by_secret = RateLimiter(
            burst=per_secret_per_minute, per_minute=per_secret_per_minute, clock=clock
        )
        self._failures = RateLimiter(
            burst=self.FAILURES_BURST, per_minute=self.FAILURES_PER_MINUTE, clock=clock
        )

    def attempt(self, *, address: str | None, secret: str) -> None:
        """Raises TooManyRequests, or counts the attempt."""
        address = address or "?"
        # Keyed by a digest: the secret itself is never kept in memory longer than the request.
        secret_key = hashlib.sha256(secret.encode()).hexdigest()
        _check(
            (self._by_address, address),
            (self._failures, address),
            (self._by_secret, secret_key),
            message="too many registrations from this address or with this secret; retry later",
        )
        self._by_address.spend(address)
        self._by_secret.spend(secret_key)

    def failed(self, *, address: str | None) -> None:
        self._failures.spend(address or "?")
