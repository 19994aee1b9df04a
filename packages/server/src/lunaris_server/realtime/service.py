"""The realtime layer of one server process: its bus, console hub and agent hub."""

from collections.abc import Callable

import orjson
import structlog

from lunaris_protocol import ConsoleEvent
from lunaris_server.realtime.agent_hub import AgentHub
from lunaris_server.realtime.bus import EventBus, Message
from lunaris_server.realtime.console_hub import ConsoleHub

log = structlog.get_logger("lunaris.realtime")

SESSIONS_ENDED = "sessions.ended"
"""``{"sessions": [ids]}``: console sessions that ended; their sockets close (see
``accounts.sessions``)."""


class Realtime:
    def __init__(self, bus: EventBus, *, console_queue_size: int = 256) -> None:
        self.bus = bus
        self.console = ConsoleHub(queue_size=console_queue_size)
        self.agents = AgentHub(bus)
        self._local_listeners: list[Callable[[ConsoleEvent], None]] = []
        bus.subscribe(self._on_message)

    async def start(self) -> None:
        await self.bus.start()
        try:
            await self.agents.request_presence()
        except Exception:
            # The bus is not connected yet; its reconnection asks again.
            log.warning("could not ask the other processes for their agent sockets yet")

    async def stop(self) -> None:
        await self.bus.stop()

    def on_local_event(self, listener: Callable[[ConsoleEvent], None]) -> None:
        """``listener`` sees each event this process announces, before it is published."""
        self._local_listeners.append(listener)

    async def publish_console(self, event: ConsoleEvent) -> None:
        for listener in self._local_listeners:
            listener(event)
        await self.bus.publish(
            {
                "topic": "console",
                "process": self.bus.process_id,
                "event": event.model_dump(mode="json"),
            }
        )

    async def _on_message(self, message: Message) -> None:
        topic = message.get("topic", "")
        if topic == "console":
            # Encoded once per process, shared by every client.
            self.console.broadcast(orjson.dumps(message["event"]).decode())
        elif topic == "bus.reconnected":
            self.console.resync_all()
            await self.agents.on_message(message)
        elif topic.startswith("agent."):
            await self.agents.on_message(message)
        elif topic == SESSIONS_ENDED:
            ids = {i for i in message.get("sessions", []) if isinstance(i, int)}
            if closed := self.console.end_sessions(ids):
                log.info("closed the console sockets of ended sessions", sockets=closed)
