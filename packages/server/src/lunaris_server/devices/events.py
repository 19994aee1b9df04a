"""The console event a device's change announces, kept small enough for any bus."""

from lunaris_protocol import DeviceStatus, DeviceStatusData, DeviceStatusUpdate
from lunaris_server.devices.models import Device


def device_status(device: Device) -> DeviceStatusUpdate:
    return DeviceStatusUpdate(
        data=DeviceStatusData(
            device_id=device.id,
            hostname=device.hostname,
            status=DeviceStatus(device.announced_status),
            last_seen_at=device.last_seen_at,
            os_version=device.os_version,
            agent_version=device.agent_version,
        )
    )
