"""What a failed check of the install test is, and how the test waits for a check to hold."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable
from typing import Final, TypeVar

WAIT_S: Final = 90.0

T = TypeVar("T")


class Failed(Exception):
    """A check did not hold; the message says what was seen instead."""


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float = WAIT_S) -> T:
    """Polls ``probe`` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
        except (urllib.error.URLError, OSError, KeyError, ValueError) as error:
            last_error, value = error, None
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise Failed(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(0.5)
