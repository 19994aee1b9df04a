"""What one server process holds for its lifetime, reachable from every request.

The settings, the database, the realtime layer, the clock and the rate limits are everyone's.
A domain's own long-lived pieces (the device cache, the last-seen writer, the command
delivery) are added as parts when the app is made, and each domain asks for its own by type:
this module knows none of them, so any layer may reach the state.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from lunaris_server.core.clock import Clock, utc_now
from lunaris_server.core.liveness import Liveness
from lunaris_server.core.settings import Settings
from lunaris_server.db import Database
from lunaris_server.realtime.service import Realtime
from lunaris_server.web.throttle import LoginThrottle, RegistrationThrottle

T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    database: Database
    realtime: Realtime
    login_throttle: LoginThrottle
    registration_throttle: RegistrationThrottle
    clock: Clock = field(default=utc_now)
    _parts: dict[type, object] = field(default_factory=dict)

    def add(self, part: object) -> None:
        """Keeps a domain's piece for the process's lifetime; one of each type."""
        self._parts[type(part)] = part

    def part(self, kind: type[T]) -> T:
        found = self._parts[kind]
        assert isinstance(found, kind)
        return found

    @property
    def liveness(self) -> Liveness:
        return Liveness(offline_after=timedelta(seconds=self.settings.offline_after_s))
