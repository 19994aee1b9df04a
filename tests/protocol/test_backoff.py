"""The one back-off of the agent's retry loops."""

import random

from lunaris_protocol.backoff import Backoff


def test_backoff_doubles_to_the_cap_and_honours_retry_after():
    backoff = Backoff(cap_s=30, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(6)]
    steps = [2, 4, 8, 16, 30, 30]
    assert all(step / 2 <= delay <= step for delay, step in zip(delays, steps, strict=True))
    assert backoff.next_delay(retry_after_s=120) == 120
    assert backoff.next_delay(retry_after_s=10**6) == 3600  # never more than an hour
    backoff.reset()
    assert backoff.next_delay() <= 2
