"""What one server process holds for its lifetime, reachable from every request."""

from dataclasses import dataclass, field
from datetime import timedelta

from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.core.clock import Clock, utc_now
from lunaris_server.core.settings import Settings
from lunaris_server.db import Database
from lunaris_server.devices.cache import DeviceCache
from lunaris_server.devices.last_seen import LastSeenWriter
from lunaris_server.devices.service import Liveness
from lunaris_server.realtime.service import Realtime
from lunaris_server.web.throttle import LoginThrottle, RegistrationThrottle


@dataclass
class AppState:
    settings: Settings
    database: Database
    realtime: Realtime
    last_seen: LastSeenWriter
    device_cache: DeviceCache
    commands: CommandDelivery
    """Which devices have commands waiting; pushes and heartbeat handovers."""
    login_throttle: LoginThrottle
    registration_throttle: RegistrationThrottle
    clock: Clock = field(default=utc_now)

    @property
    def liveness(self) -> Liveness:
        return Liveness(offline_after=timedelta(seconds=self.settings.offline_after_s))
