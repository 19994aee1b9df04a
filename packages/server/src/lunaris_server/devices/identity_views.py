"""Console actions on a device's identity: the clone flag, splitting a cloned identity,
merging a reimaged PC's old record into its new one, answers to re-enrolment requests. Each
answers a form with a redirect to the device's page."""

from typing import Literal

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lunaris_server.accounts.deps import ConsoleAdmin, user_actor
from lunaris_server.console.deps import CheckedForm
from lunaris_server.core.errors import InvalidInput
from lunaris_server.devices import clones, reenrollments, splits
from lunaris_server.devices import merge as merging
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.devices.views import canonical_id
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)


@router.post("/devices/{device_id}/clone-flag/clear")
async def clear_clone_flag(
    device_id: str,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """An admin says the device is one PC after all (it moved back and forth)."""
    canonical = canonical_id(device_id)
    await clones.clear_flag(session, device_id=canonical, now=now, actor=user_actor(request, admin))
    await work.commit()
    return RedirectResponse(f"/devices/{canonical}", status_code=303)


@router.post("/devices/{device_id}/reenrollments/{request_id}/{decision}")
async def decide_reenrollment(
    device_id: str,
    request_id: RowId,
    decision: Literal["approve", "refuse"],
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """An admin's answer to an agent that asks to enroll this device again without proof."""
    canonical = canonical_id(device_id)
    await reenrollments.decide_reenrollment(
        session,
        device_id=canonical,
        request_id=request_id,
        approve=decision == "approve",
        now=now,
        actor=user_actor(request, admin),
    )
    await work.commit()
    return RedirectResponse(f"/devices/{canonical}", status_code=303)


@router.post("/devices/{device_id}/split")
async def split_device(
    device_id: str,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """The other PC of a cloned identity, named by its hostname or its address, gets a
    device of its own at its next heartbeat."""
    hostname, address = form.get("hostname") or None, form.get("address") or None
    canonical = canonical_id(device_id)
    await splits.request_split(
        session,
        device_id=canonical,
        hostname=hostname,
        address=address,
        now=now,
        actor=user_actor(request, admin),
    )
    await work.commit()
    return RedirectResponse(f"/devices/{canonical}", status_code=303)


@router.post("/devices/{device_id}/split/cancel")
async def cancel_split(
    device_id: str,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    canonical = canonical_id(device_id)
    await splits.cancel_split(
        session, device_id=canonical, now=now, actor=user_actor(request, admin)
    )
    await work.commit()
    return RedirectResponse(f"/devices/{canonical}", status_code=303)


@router.post("/devices/{device_id}/merge")
async def merge_device(
    device_id: str,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """The PC's old record (``device_id`` in the form) joins this one, its history kept."""
    canonical = canonical_id(device_id)
    old = form.get("device_id", "")
    if not old:
        raise InvalidInput("choose the old record to merge")
    old_id = canonical_id(old)
    await merging.merge(
        session,
        old_device_id=old_id,
        new_device_id=canonical,
        liveness=state.liveness,
        now=now,
        actor=user_actor(request, admin),
        lifecycle=state.part(DeviceLifecycle),
    )
    await work.commit()
    return RedirectResponse(f"/devices/{canonical}", status_code=303)
