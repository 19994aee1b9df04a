"""The software inventory: everything ``winget list`` shows, listed soon after start, then at
most every inventory interval and after every remote action, and sent digest first.

A steady PC's inventory costs the server a 64-character digest: the agent sends the digest
alone, and the list with it only when the server answers ``full_list_needed``, or straight
away when the list changed since the digest the server last accepted (it cannot hold the new
one). That digest is remembered in memory only, so the first inventory after a start is
digest-only again. The inventory waits in the spool (the newest one only) until the server
accepted it, so an outage loses nothing; one the server refuses is dropped, as reports are.

Platform-neutral, as the rest of the runtime: what lists the software is handed in (winget on
a PC, a simulated inventory in the simulator).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from lunaris_agent.client import RequestRefused
from lunaris_agent.spool import Spool
from lunaris_protocol import InventoryReport, InventoryReportResponse, list_digest

log = logging.getLogger(__name__)

Inventory = Callable[[], Awaitable[InventoryReport]]
"""Lists everything installed, with the list's digest (:func:`lunaris_protocol.list_digest`);
a failed listing is a report with ``scan_error`` alone."""

Post = Callable[[InventoryReport], Awaitable[InventoryReportResponse]]
"""Sends one inventory body with the device token (re-registering when it is refused)."""

RECHECK_S: Final = 60.0
"""The loop wakes at least this often, so an interval the server shortened applies soon."""


class InventoryReporter:
    """Takes the inventory into the spool and sends it from there. Not thread-safe: one event
    loop drives it, and the caller of :meth:`send_pending` holds the agent's sending lock."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        spool: Spool,
        post: Post,
        listing: asyncio.Lock,
        every: Callable[[], float],
        jittered: Callable[[float], float],
        spooled: Callable[[], None] = lambda: None,
    ) -> None:
        """``listing`` is held while the software is listed: the update scan holds it too, so
        winget lists one thing at a time. ``every`` is the inventory interval as it is now;
        ``spooled`` is told after each inventory went to the spool (its health, for
        ``status``)."""
        self._inventory = inventory
        self._spool = spool
        self._post = post
        self._listing = listing
        self._every = every
        self._jittered = jittered
        self._spooled = spooled
        self._taken_at: float | None = None
        """When the last inventory was taken (monotonic); None: the first is due at once."""
        self._spread = 1.0
        """This interval's jitter, drawn once per inventory, as a factor of the interval."""
        self.accepted_digest: str | None = None
        """The digest the server last accepted, held for this device; None when unknown."""

    async def take(self) -> InventoryReport:
        """Lists the software and spools the result; the next periodic inventory is due an
        interval (±10%) from now."""
        async with self._listing:
            report = await self._inventory()
        if report.software is not None and report.digest is None:
            report = report.model_copy(update={"digest": list_digest(report.software)})
        self._spool.put_inventory(report)
        self._spooled()
        self._taken_at = time.monotonic()
        self._spread = self._jittered(1.0)
        return report

    async def send_pending(self) -> None:
        """Sends the spooled inventory, if any; forgets it once the server accepted or refused
        it. Raises :class:`~lunaris_agent.client.ServerUnavailable` (it stays spooled)."""
        report = self._spool.pending_inventory()
        if report is None:
            return
        try:
            answer = await self._send(report)
        except RequestRefused as error:
            if error.status_code == 404:
                log.warning("the server takes no software inventory (an older version): dropped")
            else:
                log.error("the server refused the software inventory, dropping it: %s", error)
            self._spool.inventory_sent(report)
            return
        self._spool.inventory_sent(report)
        log.debug(
            "inventory sent: %d added, %d changed, %d removed, %d unchanged",
            answer.added,
            answer.changed,
            answer.removed,
            answer.unchanged,
        )

    def forget_accepted(self) -> None:
        """The device changed (a new identity): the server holds no inventory for it."""
        self.accepted_digest = None

    async def run_forever(self, send: Callable[[], Awaitable[None]]) -> None:
        """Takes an inventory whenever one is due and hands it to ``send`` (best effort: it
        must not raise for an unreachable server)."""
        while True:
            wait = self._due_in()
            if wait > 0:
                # An inventory after a remote action moves the next one: sleep, then look again.
                await asyncio.sleep(min(wait, RECHECK_S))
                continue
            await self.take()
            await send()

    def _due_in(self) -> float:
        """Seconds until the next inventory, at the interval as it is now."""
        if self._taken_at is None:
            return 0.0
        return self._taken_at + self._spread * self._every() - time.monotonic()

    async def _send(self, report: InventoryReport) -> InventoryReportResponse:
        if report.software is None or report.digest is None:
            return await self._post(report)  # a failed listing: the server keeps the last list
        if self.accepted_digest in (None, report.digest):
            answer = await self._post(report.model_copy(update={"software": None}))
            if not answer.full_list_needed:
                self.accepted_digest = report.digest
                return answer
            log.info("the server asks for the whole software list (%d items)", len(report.software))
        answer = await self._post(report)
        if answer.full_list_needed:
            # Not what the protocol says: sending the same list again cannot help.
            log.warning("the server asked again for the software list it was just sent")
        else:
            self.accepted_digest = report.digest
        return answer
