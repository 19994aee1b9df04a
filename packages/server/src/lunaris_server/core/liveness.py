"""Online or offline: a device is online while it was seen within the heartbeat window
(interval x allowed misses)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from lunaris_protocol import DeviceStatus


class Seen(Protocol):
    @property
    def last_seen_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Liveness:
    offline_after: timedelta

    def cutoff(self, now: datetime) -> datetime:
        return now - self.offline_after

    def status(self, device: Seen, now: datetime) -> DeviceStatus:
        if device.last_seen_at > self.cutoff(now):
            return DeviceStatus.ONLINE
        return DeviceStatus.OFFLINE
