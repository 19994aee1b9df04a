"""The heartbeat's device cache: expiry, eviction on announcements, stale-read guard."""

from dataclasses import dataclass

from lunaris_server.devices.cache import DeviceCache


@dataclass
class Row:
    """The fields the cache copies from a device row."""

    id: str = "d1"
    hostname: str = "PC-1"
    os_version: str = "Windows 11"
    agent_version: str = "0.1.0"
    agent_capabilities: str = "exact_versions"
    time_zone: str | None = "Europe/Berlin"
    booted_at: object = None
    logged_on_user: str | None = None
    ip_addresses: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    serial_number: str | None = None
    reboot_pending_since: object = None
    announced_status: str = "online"
    token_used_at: object = "2026-11-02T09:00:00Z"
    last_ip: str | None = None
    split_pending: bool = False


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def status_event(device_id: str) -> dict:
    return {
        "topic": "console",
        "event": {"type": "DEVICE_STATUS_UPDATE", "data": {"device_id": device_id}},
    }


def make() -> tuple[DeviceCache, Ticks]:
    ticks = Ticks()
    return DeviceCache(ttl_s=30, max_entries=3, clock=ticks), ticks


async def test_entries_expire():
    cache, ticks = make()
    cache.remember("h1", Row(), read_at=ticks.now)  # type: ignore[arg-type]
    assert cache.get("h1").device_id == "d1"  # type: ignore[union-attr]
    ticks.now += 31
    assert cache.get("h1") is None
    assert len(cache) == 0


async def test_a_status_announcement_evicts_the_device_on_every_process():
    cache, ticks = make()
    cache.remember("h1", Row(), read_at=ticks.now)  # type: ignore[arg-type]
    cache.remember("h2", Row(id="d2"), read_at=ticks.now)  # type: ignore[arg-type]
    await cache.on_bus_message(status_event("d1"))
    assert cache.get("h1") is None
    assert cache.get("h2") is not None
    await cache.on_bus_message({"topic": "console", "event": {"type": "RESYNC", "data": {}}})
    assert cache.get("h2") is not None


async def test_a_read_that_raced_a_change_is_not_kept():
    cache, ticks = make()
    read_at = ticks.now
    ticks.now += 0.01
    await cache.on_bus_message(status_event("d1"))  # the row changed while we read it
    known = cache.remember("h1", Row(), read_at=read_at)  # type: ignore[arg-type]
    assert known.device_id == "d1"  # still answers this request
    assert cache.get("h1") is None  # but is not kept


async def test_a_new_token_replaces_the_old_entry():
    cache, ticks = make()
    cache.remember("old", Row(), read_at=ticks.now)  # type: ignore[arg-type]
    ticks.now += 1
    cache.remember("new", Row(), read_at=ticks.now)  # type: ignore[arg-type]
    assert cache.get("old") is None
    assert cache.get("new") is not None


async def test_size_is_bounded_and_a_lost_bus_clears_everything():
    cache, ticks = make()
    for n in range(5):
        cache.remember(f"h{n}", Row(id=f"d{n}"), read_at=ticks.now)  # type: ignore[arg-type]
    assert len(cache) == 3
    assert cache.get("h0") is None
    assert cache.get("h4") is not None
    await cache.on_bus_message({"topic": "bus.reconnected"})
    assert len(cache) == 0


async def test_this_process_evicts_its_own_announcements_at_once():
    from lunaris_protocol import DeviceStatusData, DeviceStatusUpdate

    cache, ticks = make()
    device_id = "0b5c9d1e-3f2a-4c6b-9e8d-7a6b5c4d3e2f"
    cache.remember("h1", Row(id=device_id), read_at=ticks.now)  # type: ignore[arg-type]
    event = DeviceStatusUpdate(
        data=DeviceStatusData(
            device_id=device_id,  # type: ignore[arg-type]
            hostname="PC-1",
            status="online",  # type: ignore[arg-type]
            last_seen_at=None,
            os_version="",
            agent_version="",
        )
    )
    cache.on_local_event(event)
    assert cache.get("h1") is None


async def test_its_own_announcements_coming_back_over_the_bus_evict_nothing():
    ticks = Ticks()
    cache = DeviceCache(ttl_s=30, clock=ticks, process_id="this-one")
    cache.remember("h1", Row(id="d1"), read_at=ticks.now)  # type: ignore[arg-type]
    await cache.on_bus_message(status_event("d1") | {"process": "this-one"})
    assert cache.get("h1") is not None  # evicted when announced; read fresh since
    await cache.on_bus_message(status_event("d1") | {"process": "another-one"})
    assert cache.get("h1") is None
