"""How many devices a plan may add: each policy's and ring's concurrency, and the tick's
bounds on devices and installs (``LUNARIS_SCHEDULER_MAX_DEVICES_PER_TICK``,
``LUNARIS_SCHEDULER_MAX_INSTALLS_PER_TICK``).

Devices installing now (a command sent or running, or queued for a device that is online)
hold a slot; a command waiting for an offline device does not. Candidates are taken in the
order given (devices in id order, a device's installs together), page after page: the
slots taken by one page count for the next.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.commands.models import Command
from lunaris_server.commands.overlap import OPEN_STATUSES
from lunaris_server.core.liveness import Liveness
from lunaris_server.devices.models import Device
from lunaris_server.policies.models import Policy, PolicyInstall, PolicyRing

Place = tuple[int, int]
"""A device's (policy id, ring position)."""


@dataclass(frozen=True, slots=True)
class DueInstall:
    device_id: str
    package_identifier: str
    source: str | None
    version: str
    policy_id: int
    ring_position: int


class Capacity:
    """The slots left, taken candidate by candidate."""

    def __init__(
        self,
        policies: dict[int, Policy],
        rings: dict[int, list[PolicyRing]],
        installing: dict[str, Place],
        *,
        per_tick: int,
        installs_per_tick: int | None = None,
    ) -> None:
        self._policy_caps = {p.id: p.max_concurrent for p in policies.values()}
        self._ring_caps = {
            (r.policy_id, r.position): r.max_concurrent for rs in rings.values() for r in rs
        }
        self._per_tick = per_tick
        self._installs_per_tick = installs_per_tick
        self._installs = 0
        self._per_policy: dict[int, set[str]] = defaultdict(set)
        self._per_ring: dict[Place, set[str]] = defaultdict(set)
        for device_id, place in installing.items():
            self._per_policy[place[0]].add(device_id)
            self._per_ring[place].add(device_id)
        self._devices: set[str] = set()
        self.over = 0
        """Candidates left out for want of a slot."""

    @classmethod
    async def read(
        cls,
        session: AsyncSession,
        policies: dict[int, Policy],
        rings: dict[int, list[PolicyRing]],
        *,
        liveness: Liveness,
        now: datetime,
        per_tick: int,
        installs_per_tick: int | None = None,
    ) -> "Capacity":
        """The slots free now (the devices installing are asked only where a policy or a
        ring has a limit)."""
        capped = any(p.max_concurrent is not None for p in policies.values()) or any(
            r.max_concurrent is not None for rs in rings.values() for r in rs
        )
        installing = await _installing(session, liveness=liveness, now=now) if capped else {}
        return cls(
            policies, rings, installing, per_tick=per_tick, installs_per_tick=installs_per_tick
        )

    @property
    def full(self) -> bool:
        """No new device can be taken this tick (the installs of a device taken still are)."""
        return len(self._devices) >= self._per_tick or (
            self._installs_per_tick is not None and self._installs >= self._installs_per_tick
        )

    def take(self, candidates: Iterable[DueInstall]) -> list[DueInstall]:
        kept: list[DueInstall] = []
        for install in candidates:
            place = (install.policy_id, install.ring_position)
            device = install.device_id
            policy_cap = self._policy_caps.get(install.policy_id)
            ring_cap = self._ring_caps.get(place)
            if device not in self._per_policy[install.policy_id] and (
                (policy_cap is not None and len(self._per_policy[install.policy_id]) >= policy_cap)
                or (ring_cap is not None and len(self._per_ring[place]) >= ring_cap)
                or (device not in self._devices and self.full)
            ):
                self.over += 1
                continue
            self._devices.add(device)
            self._installs += 1
            self._per_policy[install.policy_id].add(device)
            self._per_ring[place].add(device)
            kept.append(install)
        return kept


async def _installing(
    session: AsyncSession, *, liveness: Liveness, now: datetime
) -> dict[str, Place]:
    """Devices installing under a policy now: its command sent or running, or queued while
    the device is online (it takes the command within a heartbeat)."""
    online = Device.last_seen_at > liveness.cutoff(now)
    rows = await session.execute(
        select(PolicyInstall.device_id, PolicyInstall.policy_id, PolicyInstall.ring_position)
        .join(Command, Command.id == PolicyInstall.command_id)
        .join(Device, Device.id == PolicyInstall.device_id)
        .where(
            PolicyInstall.policy_id.is_not(None),
            or_(
                Command.status.in_(OPEN_STATUSES[1:]),
                (Command.status == OPEN_STATUSES[0]) & online,
            ),
        )
    )
    return {
        device_id: (policy_id, ring) for device_id, policy_id, ring in rows if policy_id is not None
    }
