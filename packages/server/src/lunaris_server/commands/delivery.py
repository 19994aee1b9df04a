"""Getting commands to agents: pushed over the agent's socket when it is open, else handed over
in its next heartbeat answer. At least once: the agent ignores a command id it has seen.

The plain heartbeat must stay cheap, so it never asks the database whether a device has
commands waiting. Each process keeps the set of devices that may have (``queued`` or ``sent``
ones), loaded at start and refreshed by the command sweeper, and kept in sync across processes
through the bus: whoever queues commands publishes ``commands.waiting`` with the device ids
after the commit. A heartbeat of a device in the set reads its commands; when it finds none,
the device leaves the set (unless it was marked again since that read began), so a device
whose commands all started, ended, expired or were cancelled costs one read more.

The push goes through the same message: the process that holds the device's socket (any
process, see realtime/agent_hub.py) reads the commands and sends them. The bus carries only
device ids: a RUN_UPDATES with its package list can be larger than a NOTIFY payload may be.
"""

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import AgentCommand, RunUpdatesCommand, RunUpdatesMessage, UpdateAgentMessage
from lunaris_server.commands import handover
from lunaris_server.commands.models import Command
from lunaris_server.core.security import token_hash
from lunaris_server.devices.cache import DeviceCache
from lunaris_server.devices.models import Device
from lunaris_server.realtime import outbox
from lunaris_server.realtime.bus import Message
from lunaris_server.web.state import AppState

log = structlog.get_logger("lunaris.commands")

TOPIC = "commands.waiting"
IDS_PER_MESSAGE = 150
"""Device ids per bus message (36 characters each, well under the NOTIFY payload limit)."""


class CommandDelivery:
    def __init__(self, state: AppState, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._state = state
        self._database = state.database
        self._realtime = state.realtime
        self._clock = state.clock
        self._monotonic = monotonic
        # Device id -> when it was last marked as having commands waiting (monotonic).
        self._waiting: dict[str, float] = {}
        self._loaded = False
        self._tasks: set[asyncio.Task[object]] = set()

    # -- which devices have something to hand over ---------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded

    def __len__(self) -> int:
        return len(self._waiting)

    def may_have(self, device_id: str) -> bool:
        """False only when the device surely has nothing waiting. Until the set is loaded
        every device may have something."""
        return not self._loaded or device_id in self._waiting

    def mark(self, device_ids: Iterable[str]) -> None:
        at = self._monotonic()
        for device_id in device_ids:
            self._waiting[device_id] = at

    def _settle(self, device_id: str, *, read_at: float) -> None:
        """A read that began at ``read_at`` found nothing waiting for the device."""
        marked_at = self._waiting.get(device_id)
        if marked_at is not None and marked_at < read_at:
            del self._waiting[device_id]

    async def reload(self) -> None:
        """Reads which devices have commands waiting; marks made since the read began stay."""
        read_at = self._monotonic()
        async with self._database.session() as session:
            found = await handover.devices_with_waiting_commands(session, now=self._clock())
        fresh = {device_id: self._waiting.get(device_id, read_at) for device_id in found}
        for device_id, marked_at in self._waiting.items():
            if marked_at >= read_at:
                fresh[device_id] = marked_at
        self._waiting = fresh
        self._loaded = True

    # -- telling every process ---------------------------------------------------------------------

    async def announce(self, device_ids: Iterable[str]) -> None:
        """After the commit that queued commands for these devices: every process learns that
        they have commands waiting, and the one holding a device's socket pushes them."""
        ids = list(dict.fromkeys(device_ids))
        self.mark(ids)
        for start in range(0, len(ids), IDS_PER_MESSAGE):
            chunk = ids[start : start + IDS_PER_MESSAGE]
            try:
                await self._realtime.bus.publish({"topic": TOPIC, "devices": chunk})
            except Exception:
                # The other processes' periodic reload finds them; heartbeats deliver.
                log.exception("could not announce waiting commands", devices=len(chunk))

    async def on_bus_message(self, message: Message) -> None:
        topic = message.get("topic")
        if topic == TOPIC:
            device_ids = [str(d) for d in message.get("devices", [])]
            self.mark(device_ids)
            for device_id in device_ids:
                if self._realtime.agents.is_local(device_id):
                    self._spawn(self.push(device_id))
        elif topic == "bus.reconnected":
            # Announcements made while this process was cut off were lost.
            self._spawn(self._reload_and_push())

    # -- handing over ------------------------------------------------------------------------------

    async def for_heartbeat(
        self, session: AsyncSession, *, device_token: str, cache: DeviceCache, now: datetime
    ) -> list[AgentCommand]:
        """The commands to put in this heartbeat's answer (usually none, without a query).
        Call after the heartbeat was applied (the token is valid) and committed."""
        if self._loaded and not self._waiting:
            return []
        hashed = token_hash(device_token)
        known = cache.get(hashed)
        if known is not None:
            device_id: str | None = known.device_id
        else:  # the heartbeat just changed the device, which evicted it from the cache
            device_id = await session.scalar(select(Device.id).where(Device.token_hash == hashed))
        if device_id is None or not self.may_have(device_id):
            return []
        handed = await self._claim(session, device_id=device_id, now=now)
        return [handover.to_wire(command) for command in handed]

    async def push(self, device_id: str) -> int:
        """Sends the device's waiting commands over its socket, if this process holds it;
        returns how many were sent. A send that fails leaves them to the heartbeat."""
        if not self._realtime.agents.is_local(device_id) or not self.may_have(device_id):
            return 0
        async with self._database.session() as session:
            handed = await self._claim(session, device_id=device_id, now=self._clock())
        sent = 0
        for command in handed:
            text = _message(handover.to_wire(command))
            try:
                if not await self._realtime.agents.send(device_id, text):
                    break
            except Exception as error:
                log.info(
                    "push failed; the heartbeat hands it over",
                    device_id=device_id,
                    error=repr(error),
                )
                break
            sent += 1
        if sent:
            log.info("commands pushed", device_id=device_id, commands=sent)
        return sent

    async def _claim(
        self, session: AsyncSession, *, device_id: str, now: datetime
    ) -> list[Command]:
        read_at = self._monotonic()
        handed = await handover.claim_for_delivery(session, device_id=device_id, now=now)
        await outbox.commit(session, self._state)
        if not handed:
            self._settle(device_id, read_at=read_at)
        return handed

    async def _reload_and_push(self) -> None:
        await self.reload()
        for device_id in list(self._waiting):
            if self._realtime.agents.is_local(device_id):
                await self.push(device_id)

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: "asyncio.Task[object]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("command delivery failed", error=repr(task.exception()))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _message(command: AgentCommand) -> str:
    if isinstance(command, RunUpdatesCommand):
        return RunUpdatesMessage(data=command).model_dump_json()
    return UpdateAgentMessage(data=command).model_dump_json()
