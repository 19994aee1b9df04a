"""How long to wait before trying again: one exponential back-off with jitter for every retry
loop on either side of the wire (the agent's heartbeats, its push socket, the simulator's
single runs; the server's bus reconnecting to PostgreSQL).

Pure (no I/O, no clock, the random generator injected), so it lives with the rules both
sides share.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

FIRST_RETRY_S: Final = 2.0
LONGEST_RETRY_AFTER_S: Final = 3600.0
"""A ``Retry-After`` longer than this is taken as this: the server knows its load, but an
hour is the longest an agent waits."""


@dataclass
class Backoff:
    """Delays between failed attempts: 2 s, 4 s, 8 s ... (from ``first_s``) up to ``cap_s``,
    each drawn from the upper half of its step so that devices which failed together retry
    apart. :meth:`reset` after a success starts again from ``first_s``."""

    cap_s: float
    rng: random.Random
    first_s: float = FIRST_RETRY_S
    failures: int = 0
    """Failed attempts since the last :meth:`reset`."""
    _step_s: float = 0.0

    def __post_init__(self) -> None:
        self._step_s = self.first_s

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """The wait after one more failure; never shorter than the server's ``Retry-After``."""
        self.failures += 1
        step = min(self._step_s, self.cap_s)
        self._step_s = min(self._step_s * 2, self.cap_s)
        delay = self.rng.uniform(step / 2, step)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, LONGEST_RETRY_AFTER_S))
        return delay

    def reset(self) -> None:
        self._step_s = self.first_s
        self.failures = 0
