"""Which server process holds which agent's socket, and delivery to it from any process.

Each process keeps the sockets its agents opened. Connects and disconnects are announced on
the bus, so every process knows where a device's socket lives; a message for a device on
another process travels over the bus to the process that holds it. A process that starts
asks the others to announce their sockets again.
"""

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from lunaris_server.realtime.bus import EventBus, Message

log = structlog.get_logger("lunaris.agent_hub")

Send = Callable[[str], Awaitable[None]]
Close = Callable[[str], Awaitable[None]]
"""Closes the socket, giving the reason."""


@dataclass(frozen=True, slots=True)
class AgentSocket:
    device_id: str
    connection_id: str
    send: Send
    close: Close


@dataclass(frozen=True, slots=True)
class Location:
    process_id: str
    connection_id: str
    connected_at: float


class AgentHub:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._local: dict[str, AgentSocket] = {}
        self._locations: dict[str, Location] = {}

    @property
    def process_id(self) -> str:
        return self._bus.process_id

    @property
    def local_count(self) -> int:
        return len(self._local)

    def location(self, device_id: str) -> str | None:
        """The id of the process holding this device's socket, if any."""
        found = self._locations.get(device_id)
        return found.process_id if found else None

    def is_local(self, device_id: str) -> bool:
        """This process holds the device's socket."""
        return device_id in self._local

    async def attach(self, device_id: str, send: Send, close: Close) -> AgentSocket:
        socket = AgentSocket(device_id, uuid.uuid4().hex, send, close)
        self._local[device_id] = socket
        await self._announce(socket, connected=True)
        return socket

    async def detach(self, socket: AgentSocket) -> None:
        if self._local.get(socket.device_id) is socket:
            del self._local[socket.device_id]
            await self._announce(socket, connected=False)

    async def send(self, device_id: str, text: str) -> bool:
        """Delivers to the device's socket wherever it is; False when none is open."""
        local = self._local.get(device_id)
        if local is not None:
            await local.send(text)
            return True
        process_id = self.location(device_id)
        if process_id is None:
            return False
        await self._bus.publish(
            {"topic": "agent.deliver", "process": process_id, "device_id": device_id, "text": text}
        )
        return True

    async def disconnect(self, device_ids: list[str], *, reason: str) -> None:
        """Closes these devices' sockets on every process (after their tokens were revoked):
        at once here, and through the bus wherever else one is open."""
        await self._close_local(device_ids, reason)
        try:
            await self._bus.publish(
                {"topic": "agent.disconnect", "devices": device_ids, "reason": reason}
            )
        except Exception:
            # Their tokens no longer work: a socket left open elsewhere is closed when its
            # process restarts, and nothing is sent down it meanwhile (its commands are closed).
            log.exception("could not announce closing agent sockets", devices=len(device_ids))

    async def _close_local(self, device_ids: list[str], reason: str) -> None:
        for device_id in device_ids:
            socket = self._local.pop(device_id, None)
            if socket is None:
                continue
            await self._announce(socket, connected=False)
            try:
                await socket.close(reason)
            except Exception:
                log.debug("agent socket already closed", device_id=device_id)

    async def request_presence(self) -> None:
        await self._bus.publish({"topic": "agent.presence_query", "process": self.process_id})

    async def on_message(self, message: Message) -> None:
        topic = message["topic"]
        if topic == "agent.presence":
            self._track(message)
        elif topic == "agent.deliver" and message.get("process") == self.process_id:
            local = self._local.get(message["device_id"])
            if local is not None:
                await local.send(message["text"])
        elif topic == "agent.disconnect":
            await self._close_local([str(d) for d in message["devices"]], message["reason"])
        elif topic == "agent.presence_query" or topic == "bus.reconnected":
            for socket in list(self._local.values()):
                await self._announce(socket, connected=True)
            if topic == "bus.reconnected":
                # Announcements made while this process was cut off were lost.
                await self.request_presence()

    def _track(self, message: Message) -> None:
        device_id = message["device_id"]
        current = self._locations.get(device_id)
        if message["connected"]:
            # A late announcement of an older connection must not win over a newer one.
            if current is None or message["connected_at"] >= current.connected_at:
                self._locations[device_id] = Location(
                    message["process"], message["connection"], message["connected_at"]
                )
        elif current is not None and current.connection_id == message["connection"]:
            del self._locations[device_id]

    async def _announce(self, socket: AgentSocket, *, connected: bool) -> None:
        message = {
            "topic": "agent.presence",
            "process": self.process_id,
            "device_id": socket.device_id,
            "connection": socket.connection_id,
            "connected": connected,
            "connected_at": time.time(),
        }
        try:
            await self._bus.publish(message)
        except Exception:
            # Unknown to the other processes for now: delivery falls back to the heartbeat.
            log.exception("could not announce an agent socket", device_id=socket.device_id)
