"""``POST /api/agent/inventory`` as the server is to answer it (lunaris_protocol.inventory),
mounted on the real app in-process until the server has its own: the device's token is
checked by the server's own lookup, the lists are kept here in memory.

When the server's endpoint exists, :func:`mount` leaves it alone and returns None: the tests
that use this then hold only what the agent sent and was answered."""

from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from lunaris_protocol import InstalledItem, InventoryReport, InventoryReportResponse, ScanError
from lunaris_server.devices import service as devices
from lunaris_server.web.deps import device_token

PATH = "/api/agent/inventory"


@dataclass
class InventoryStandIn:
    digests: dict[str, str] = field(default_factory=dict)
    """The digest held per device id."""
    lists: dict[str, list[InstalledItem]] = field(default_factory=dict)
    scan_errors: dict[str, ScanError] = field(default_factory=dict)
    confirmed: dict[str, int] = field(default_factory=dict)
    """Digest-only inventories the server held the digest of, per device: the inventory time
    recorded."""
    unavailable: int = 0
    """Answer this many full lists with 503, as a server in trouble."""
    refused: int = 0
    """Refuse this many inventories with 422, as a server that cannot take them."""

    async def receive(
        self, body: InventoryReport, request: Request
    ) -> InventoryReportResponse | JSONResponse:
        state = request.app.state.lunaris
        async with state.database.session() as session:
            device = await devices.authenticate(
                session, device_token=device_token(request), lock=False
            )
        device_id = str(device.id)
        if self.refused > 0:
            self.refused -= 1
            return JSONResponse({"error": {"message": "not this one"}}, status_code=422)
        if body.software is not None:
            if self.unavailable > 0:
                self.unavailable -= 1
                return JSONResponse({"error": {"message": "busy"}}, status_code=503)
            answer = _compare(self.lists.get(device_id, []), body.software)
            self.lists[device_id] = list(body.software)
            if body.digest is not None:
                self.digests[device_id] = body.digest
            return answer
        if body.digest is not None:
            if self.digests.get(device_id) != body.digest:
                return InventoryReportResponse(full_list_needed=True)
            self.confirmed[device_id] = self.confirmed.get(device_id, 0) + 1
            return InventoryReportResponse(unchanged=len(self.lists[device_id]))
        if body.scan_error is not None:
            self.scan_errors[device_id] = body.scan_error
        return InventoryReportResponse()


def mount(app: FastAPI) -> InventoryStandIn | None:
    if any(getattr(route, "path", None) == PATH for route in app.router.routes):
        return None
    stand_in = InventoryStandIn()
    # First, before the console's catch-all routes.
    app.router.routes.insert(
        0, APIRoute(PATH, stand_in.receive, methods=["POST"], response_model=None)
    )
    return stand_in


def _compare(old: list[InstalledItem], new: list[InstalledItem]) -> InventoryReportResponse:
    before = {item.package_identifier: item for item in old}
    after = {item.package_identifier: item for item in new}
    kept = before.keys() & after.keys()
    changed = sum(before[key] != after[key] for key in kept)
    return InventoryReportResponse(
        added=len(after.keys() - before.keys()),
        changed=changed,
        removed=len(before.keys() - after.keys()),
        unchanged=len(kept) - changed,
    )
