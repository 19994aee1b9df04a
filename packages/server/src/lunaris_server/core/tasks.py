"""The one loop every periodic job of a server process runs in: the offline sweep, the
command sweep, the last-seen writer, the console-session check, the metrics refresher.

A failed run is logged and the next one catches up (the database may be restarting); the
loop ends only when its task is cancelled, at shutdown.
"""

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("lunaris.tasks")


async def run_every(
    interval_s: float | Callable[[], float],
    work: Callable[[], Awaitable[object]],
    *,
    what: str,
    at_once: bool = True,
) -> None:
    """Runs ``work`` every ``interval_s`` (or what the callable says after each run); with
    ``at_once`` the first run is at the start, else after one interval."""
    if not at_once:
        await asyncio.sleep(_seconds(interval_s))
    while True:
        try:
            await work()
        except Exception:
            log.exception(f"{what} failed")
        await asyncio.sleep(_seconds(interval_s))


def _seconds(interval_s: float | Callable[[], float]) -> float:
    return interval_s() if callable(interval_s) else interval_s
