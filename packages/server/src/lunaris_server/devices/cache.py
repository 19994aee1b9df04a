"""What the heartbeat's fast path needs to know of a device, without asking the database.

Most heartbeats say only "still here". Answering them from memory (token hash -> device)
saves a database round trip per heartbeat. The cache never decides anything on its own:
anything that changes a device's token or status announces a ``DEVICE_STATUS_UPDATE``,
and every process evicts that device when the announcement passes on the bus. A lost bus
connection clears the cache; entries also expire after ``ttl_s``, which bounds how long a
missed announcement could leave an entry stale. The process that makes a change evicts at
once; another process may still honour a replaced token until the announcement reaches it
over the bus (milliseconds).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from lunaris_protocol import ConsoleEvent, DeviceStatusUpdate
from lunaris_server.devices.models import Device
from lunaris_server.realtime.bus import Message


@dataclass(frozen=True, slots=True)
class KnownDevice:
    device_id: str
    hostname: str
    os_version: str
    agent_version: str
    agent_capabilities: str
    time_zone: str | None
    booted_at: datetime | None
    logged_on_user: str | None
    ip_addresses: str | None
    model: str | None
    manufacturer: str | None
    serial_number: str | None
    reboot_pending: bool
    """It is "reboot pending": an agent saying Windows waits for a restart brings no news."""
    announced_status: str
    token_used: bool
    """False until the device first spoke with its token (then it must be recorded)."""
    last_ip: str | None
    """Where it last spoke from: a heartbeat from elsewhere is news (see devices/clones.py)."""
    split_pending: bool
    """Its heartbeats are looked at until a split completes (see devices/splits.py)."""
    cached_at: float


class DeviceCache:
    def __init__(
        self,
        *,
        ttl_s: float = 900.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        process_id: str | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self.process_id = process_id
        """This process's id on the bus: its own announcements come back over the bus too,
        after :meth:`on_local_event` has evicted for them, and a fresh entry read since must
        not be evicted again."""
        self.max_entries = max_entries
        self._clock = clock
        self._by_token: dict[str, KnownDevice] = {}
        self._token_of: dict[str, str] = {}
        # When each device was last evicted: a read that began before that is stale.
        self._evicted_at: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def now(self) -> float:
        return self._clock()

    def get(self, token_hash: str) -> KnownDevice | None:
        known = self._by_token.get(token_hash)
        if known is not None and self._clock() - known.cached_at > self.ttl_s:
            self._drop(token_hash)
            return None
        return known

    def remember(self, token_hash: str, device: Device, *, read_at: float) -> KnownDevice:
        """Caches a device read from the database at ``read_at`` (a ``now()`` value)."""
        known = KnownDevice(
            device.id,
            device.hostname,
            device.os_version,
            device.agent_version,
            device.agent_capabilities,
            device.time_zone,
            device.booted_at,
            device.logged_on_user,
            device.ip_addresses,
            device.model,
            device.manufacturer,
            device.serial_number,
            device.reboot_pending_since is not None,
            device.announced_status,
            device.token_used_at is not None,
            device.last_ip,
            device.split_pending,
            read_at,
        )
        if self._evicted_at.get(device.id, float("-inf")) >= read_at:
            return known  # changed while we were reading it: not worth keeping
        if len(self._by_token) >= self.max_entries:
            self._drop(next(iter(self._by_token)))  # the oldest entry
        self.forget(device.id)
        self._by_token[token_hash] = known
        self._token_of[device.id] = token_hash
        return known

    def forget(self, device_id: str) -> None:
        token_hash = self._token_of.get(device_id)
        if token_hash is not None:
            self._drop(token_hash)

    def clear(self) -> None:
        self._by_token.clear()
        self._token_of.clear()

    def on_local_event(self, event: ConsoleEvent) -> None:
        """This process announced ``event``: evict before the request answers, not when the
        bus brings the announcement back (PostgreSQL delivers it a few milliseconds later)."""
        if isinstance(event, DeviceStatusUpdate):
            self._evict(str(event.data.device_id))

    async def on_bus_message(self, message: Message) -> None:
        """Another process (or this one) announced something."""
        topic = message.get("topic")
        if topic == "console" and self.process_id and message.get("process") == self.process_id:
            return
        if topic == "console" and message["event"]["type"] == "DEVICE_STATUS_UPDATE":
            self._evict(message["event"]["data"]["device_id"])
        elif topic == "bus.reconnected":
            self.clear()

    def _evict(self, device_id: str) -> None:
        self._evicted_at[device_id] = self._clock()
        self.forget(device_id)
        self._prune_evictions()

    def _drop(self, token_hash: str) -> None:
        known = self._by_token.pop(token_hash, None)
        if known is not None and self._token_of.get(known.device_id) == token_hash:
            del self._token_of[known.device_id]

    def _prune_evictions(self) -> None:
        if len(self._evicted_at) > self.max_entries:
            horizon = self._clock() - self.ttl_s
            self._evicted_at = {d: t for d, t in self._evicted_at.items() if t > horizon}
