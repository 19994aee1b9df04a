"""Rate limits on the two doors anyone can knock on: console login and agent registration.

Token buckets per key, in this process's memory: cheap, and a restart forgets them, which
only gives an attacker one more burst. With several server processes each keeps its own
buckets, so the fleet-wide limit is the per-process one times the number of processes.

- Login: failures spend from the address's bucket, the (username, address) bucket and the
  username's own: five wrong passwords from one place slow that person to one try a minute,
  a place that fails often waits, and a username guessed at from many places is held back,
  except from the addresses its user logged in from before.
- Registration: valid attempts spend from the presented secret's bucket (generous: a whole
  rollout enrols through one NAT address at once); attempts with a wrong secret spend from a
  small per-address bucket.

Client addresses are the socket's, or ``X-Forwarded-For``'s only when the request came from
``LUNARIS_FORWARDED_ALLOW_IPS`` (uvicorn's proxy headers): a client cannot pick its bucket.
"""

import hashlib
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lunaris_server.core.errors import TooManyRequests


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

    def refund(self, key: str) -> None:
        """Gives back a token spent for an attempt that turned out fine."""
        bucket = self._refilled(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + 1)

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
    """Failures count, successes do not: an office behind one address logs in together.

    - an address: ``failures_per_minute`` wrong passwords (any usernames), then it waits;
    - a username from one address: five, then one a minute (the person who mistyped);
    - a username from everywhere: fifty, refilled within 15 minutes, except from an address
      the user logged in from before (``trusted``): a botnet guessing at ``admin`` slows the
      guessing, not the admin at their desk.
    """

    FAILURES_BURST = 5
    FAILURES_PER_MINUTE = 1
    USER_FAILURES_BURST = 50
    USER_FAILURES_PER_MINUTE = 50 / 15

    def __init__(self, *, failures_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self._by_address = RateLimiter(
            burst=failures_per_minute, per_minute=failures_per_minute, clock=clock
        )
        self._failures = RateLimiter(
            burst=self.FAILURES_BURST, per_minute=self.FAILURES_PER_MINUTE, clock=clock
        )
        self._user_failures = RateLimiter(
            burst=self.USER_FAILURES_BURST, per_minute=self.USER_FAILURES_PER_MINUTE, clock=clock
        )

    def username_held(self, username: str) -> bool:
        """Failures from everywhere hold this username back (ask whether the address is
        trusted before :meth:`attempt`)."""
        return self._user_failures.retry_after(username) > 0

    def attempt(self, *, address: str | None, username: str, trusted: bool = False) -> None:
        """Raises TooManyRequests, or lets the attempt go ahead, counted as a failure until
        :meth:`succeeded` says otherwise: concurrent guesses cannot all pass the check
        before any of them is counted."""
        limits = self._limits(address, username, trusted)
        _check(*limits, message="too many login attempts; try again later")
        for limiter, key in limits:
            limiter.spend(key)

    def succeeded(self, *, address: str | None, username: str, trusted: bool = False) -> None:
        for limiter, key in self._limits(address, username, trusted):
            limiter.refund(key)

    def _limits(
        self, address: str | None, username: str, trusted: bool
    ) -> list[tuple[RateLimiter, str]]:
        place = address_key(address)
        limits = [(self._by_address, place), (self._failures, f"{username}\0{place}")]
        if not trusted:
            limits.append((self._user_failures, username))
        return limits


class RegistrationThrottle:
    """A rollout registers thousands of PCs through one NAT address in minutes: valid
    registrations are limited per secret only (a burst of ten minutes' worth), wrong secrets
    per address (ten, then ten a minute)."""

    FAILURES_BURST = 10
    FAILURES_PER_MINUTE = 10
    SECRET_BURST_MINUTES = 10

    def __init__(
        self,
        *,
        per_secret_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._by_secret = RateLimiter(
            burst=per_secret_per_minute * self.SECRET_BURST_MINUTES,
            per_minute=per_secret_per_minute,
            clock=clock,
        )
        self._failures = RateLimiter(
            burst=self.FAILURES_BURST, per_minute=self.FAILURES_PER_MINUTE, clock=clock
        )

    def attempt(self, *, address: str | None, secret: str) -> None:
        """Raises TooManyRequests, or counts the attempt (as a wrong secret, until
        :meth:`succeeded`: concurrent guesses are counted before any is checked)."""
        # Keyed by a digest: the secret itself is never kept in memory longer than the request.
        secret_key = hashlib.sha256(secret.encode()).hexdigest()
        place = address_key(address)
        _check(
            (self._failures, place),
            (self._by_secret, secret_key),
            message="too many registrations from this address or with this secret; retry later",
        )
        self._by_secret.spend(secret_key)
        self._failures.spend(place)

    def succeeded(self, *, address: str | None) -> None:
        """The secret was valid: its address's failure token comes back."""
        self._failures.refund(address_key(address))


def address_key(address: str | None) -> str:
    """The bucket of a client address: an IPv6 client holds a whole /64 (a network, not one
    address), so it cannot take a fresh bucket for every address it has."""
    if not address:
        return "?"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
