"""The console event an update report announces, kept small enough for any bus."""

from lunaris_protocol import DeviceUpdatesChanged, DeviceUpdatesChangedData

MAX_LISTED_PACKAGE_BYTES = 4_000
"""Above this the package lists are left out (``lists_complete`` false): the device id is
the reference, and the console refetches that device's updates anyway."""


def device_updates_changed(
    device_id: str,
    *,
    updates_count: int,
    added: list[str],
    changed: list[str],
    removed: list[str],
) -> DeviceUpdatesChanged:
    listed = sum(len(p.encode()) + 3 for p in (*added, *changed, *removed))
    complete = listed <= MAX_LISTED_PACKAGE_BYTES
    return DeviceUpdatesChanged(
        data=DeviceUpdatesChangedData(
            device_id=device_id,
            updates_count=updates_count,
            added_count=len(added),
            changed_count=len(changed),
            removed_count=len(removed),
            added=added if complete else [],
            changed=changed if complete else [],
            removed=removed if complete else [],
            lists_complete=complete,
        )
    )
