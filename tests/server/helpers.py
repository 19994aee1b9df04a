"""Helpers for the server tests: a settable monotonic clock for the rate limiters."""


class Ticks:
    """A monotonic clock the test sets."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
