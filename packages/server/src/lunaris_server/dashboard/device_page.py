"""One device's page: its overview, its updates, its history and its recent commands, and
the fragments a live refresh swaps in. Like the dashboard it composes several domains
(devices, updates, commands), so it lives above them."""

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lunaris_server.accounts.deps import ConsoleUser
from lunaris_server.commands import queries as command_queries
from lunaris_server.console.deps import ConsoleDep
from lunaris_server.console.web import Console
from lunaris_server.core.errors import NotFound
from lunaris_server.devices import clones, groups, reenrollments, splits
from lunaris_server.devices import merge as merging
from lunaris_server.devices import service as devices
from lunaris_server.devices.models import Device
from lunaris_server.devices.tags import tags_of
from lunaris_server.devices.views import canonical_id, device_rows, device_view
from lunaris_server.policies import planning
from lunaris_server.policies import service as policies
from lunaris_server.policies.models import Policy, PolicyRing
from lunaris_server.updates import queries as update_queries
from lunaris_server.updates import rule_store
from lunaris_server.updates.rules import OFFERED
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.state import AppState

router = APIRouter(include_in_schema=False)

HISTORY_SHOWN = 50


async def _device(session: SessionDep, device_id: str) -> Device:
    return await devices.get_device(session, device_id=canonical_id(device_id))


async def _detail_context(
    session: SessionDep, state: AppState, now: datetime, device: Device
) -> dict[str, object]:
    events, events_total = await update_queries.device_events(
        session, device_id=device.id, limit=HISTORY_SHOWN, offset=0
    )
    tags = await tags_of(session, [device.id])
    updates = await update_queries.device_updates(session, device_id=device.id)
    decisions = await rule_store.device_decisions(session, device_id=device.id, updates=updates)
    return {
        **device_view(device, state, now, tags[device.id]),
        "memberships": await groups.groups_of(session, device_id=device.id),
        "placement": await _placement(session, device.id),
        "updates": updates,
        "decisions": decisions,
        "offered": sum(decisions[u.id].state in OFFERED for u in updates),
        "events": events,
        "events_total": events_total,
        "reenrollments": await reenrollments.pending_reenrollments(session, device_id=device.id),
        "split": await splits.open_split(session, device.id) if device.split_pending else None,
        "seen_hostnames": clones.seen_hostnames(device),
        "seen_addresses": clones.seen_addresses(device),
    }


async def _placement(session: SessionDep, device_id: str) -> tuple[Policy, PolicyRing] | None:
    """The policy and ring that install on this device (the first enabled policy, by
    priority, with a ring it is in)."""
    found = await policies.list_policies(session)
    rings = await policies.rings_of(session, [p.id for p in found])
    return await planning.device_place(session, device_id, found, rings)


@router.get("/devices/{device_id}")
async def device_page(
    device_id: str,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    canonical = canonical_id(device_id)
    if (merged_into := await merging.merged_into(session, canonical)) is not None:
        return RedirectResponse(f"/devices/{merged_into}", status_code=301)
    device = await devices.get_device(session, device_id=canonical)
    context = await _detail_context(session, state, now, device)
    context["merge_candidates"] = await merging.candidates(
        session, device, liveness=state.liveness, now=now
    )
    context["recent_commands"] = await command_queries.recent_for_device(
        session, device_id=device.id
    )
    return console.render(request, "pages/devices/detail.html", context)


DeviceFragment = Literal["row", "overview", "updates", "history"]


@router.get("/devices/{device_id}/fragments/{fragment}")
async def device_fragment(
    device_id: str,
    fragment: DeviceFragment,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """One piece of a device's pages, for the live refresh after an event about it.

    A device revoked since the page was shown is answered with 200 all the same, so that htmx
    swaps: its row is deleted, and its panels give way to a notice that it is gone.
    """
    canonical = canonical_id(device_id)
    try:
        device = await devices.get_device(session, device_id=canonical)
    except NotFound:
        return _gone(request, console, canonical, fragment)
    if fragment == "row":
        context = (await device_rows(session, [device], state, now))[0]
    else:
        context = await _detail_context(session, state, now, device)
    return console.render(request, f"partials/devices/{fragment}.html", context)


DEVICE_GONE_EVENT = "lunaris:device-gone"
"""Fired (``HX-Trigger``) where a row was deleted: live.js then refreshes the list around it,
whose count and pages changed."""


def _gone(request: Request, console: Console, device_id: str, fragment: str) -> Response:
    if fragment == "row":
        headers = {"HX-Reswap": "delete", "HX-Trigger": DEVICE_GONE_EVENT}
        return Response(status_code=200, headers={**headers, "Cache-Control": "no-store"})
    context = {"device_id": device_id, "fragment": fragment}
    return console.render(request, "partials/devices/gone.html", context)
