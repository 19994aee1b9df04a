"""Console pages for remote actions: the commands list, a device's commands panel, and the
forms that queue and cancel commands. The forms call the same service functions as the JSON
API (so they are checked and audited alike); viewers see no forms and are refused anyway."""

from typing import Annotated, Final
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import RedirectResponse, Response

from lunaris_protocol import CommandStatus
from lunaris_protocol.limits import MAX_IDENTIFIER
from lunaris_protocol.packages import SOURCES
from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.commands import queries
from lunaris_server.commands import service as commands
from lunaris_server.commands.queries import CommandQuery
from lunaris_server.console.deps import CheckedForm, ConsoleDep
from lunaris_server.console.htmx import refusal_for_fragment, wants_fragment
from lunaris_server.console.paging import PER_PAGE, Pager, decode_cursor
from lunaris_server.console.web import Console
from lunaris_server.core.errors import DomainError, InvalidInput, NotFound
from lunaris_server.devices import service as devices
from lunaris_server.updates import queries as update_queries
from lunaris_server.updates import rule_store
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)

FILTERS: Final = ("status", "device")
LIST_VIEW: Final = "list"
DEVICE_VIEW: Final = "device"
"""Where a Cancel button sits (the ``view`` form field): a row of the list, or a device's
panel. An htmx request gets that piece back; a plain form post goes back to its page."""


def canonical_id(text: str, what: str) -> str:
    try:
        return str(UUID(text))
    except ValueError:
        raise NotFound(f"no {what} with id {text}") from None


def command_query(
    status: Annotated[str, Query(max_length=16)] = "",
    device: Annotated[str, Query(max_length=256)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    after: Annotated[str, Query(max_length=1024)] = "",
    before: Annotated[str, Query(max_length=1024)] = "",
) -> CommandQuery:
    """The list's state, as the URL holds it. ``device`` is a device id or part of a
    hostname; the pager's links carry the place where the next or previous page starts."""
    try:
        chosen = CommandStatus(status) if status else None
    except ValueError:
        allowed = ", ".join(s.value for s in CommandStatus)
        raise InvalidInput(f"no command status {status!r}; use one of: {allowed}") from None
    device = device.strip()
    try:
        device_id: str | None = str(UUID(device)) if device else None
    except ValueError:
        device_id = None
    return CommandQuery(
        status=chosen,
        device_id=device_id,
        hostname=device if device and device_id is None else None,
        limit=PER_PAGE,
        offset=(page - 1) * PER_PAGE,
        after=queries.check_cursor(decode_cursor(after)) if after else None,
        before=queries.check_cursor(decode_cursor(before)) if before and not after else None,
    )


CommandQueryDep = Annotated[CommandQuery, Depends(command_query)]


@router.get("/commands")
async def commands_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    query: CommandQueryDep,
    skipped: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    held: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    deployment: UUID | None = None,
) -> Response:
    """``skipped``: a fleet-wide run just left out this many devices (an open command of
    theirs installs the package already), and ``held`` this many (their package rules keep
    it), said above the list; ``deployment``: the deployment it queued, linked there."""
    found = await queries.command_page(session, query=query)
    context = {
        "skipped": skipped,
        "held": held,
        "deployment_id": str(deployment) if deployment else None,
        "rows": found.rows,
        "pager": Pager.seeking(
            offset=query.offset, total=found.total, first=found.first, last=found.last
        ),
        "filters": request.query_params,
        "filtered": any(request.query_params.get(k) for k in FILTERS),
        "statuses": list(CommandStatus),
    }
    template = (
        "partials/commands/table.html" if wants_fragment(request) else "pages/commands/list.html"
    )
    return console.render(request, template, context)


@router.get("/commands/{command_id}/row")
async def command_row(
    command_id: str,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
) -> Response:
    """One row of the list, for the live refresh after an event about the command."""
    row = await queries.command_row(session, command_id=canonical_id(command_id, "command"))
    return console.render(request, "partials/commands/row.html", {"row": row})


async def _device_panel(
    request: Request, console: Console, session: SessionDep, device_id: str, **extra: object
) -> Response:
    device = await devices.get_device(session, device_id=device_id)
    recent = await queries.recent_for_device(session, device_id=device.id)
    return console.render(
        request,
        "partials/commands/device_panel.html",
        {"device": device, "recent_commands": recent, **extra},
    )


@router.get("/devices/{device_id}/commands")
async def device_commands(
    device_id: str,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
) -> Response:
    """A device's commands panel, for the live refresh after an event about one of them.
    A device revoked since the page was shown gets a hidden panel (200, so that htmx swaps
    it) that comes back if the device is enrolled again."""
    canonical = canonical_id(device_id, "device")
    try:
        return await _device_panel(request, console, session, canonical)
    except NotFound:
        return console.render(
            request, "partials/commands/device_panel_gone.html", {"device_id": canonical}
        )


@router.post("/devices/{device_id}/commands")
async def create_command(
    device_id: str,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """RUN_UPDATES for one device: ``package`` (one of its updates), or ``all=yes``: every
    update its package rules offer (those ignored, held or skipped stay)."""
    device_id = canonical_id(device_id, "device")
    if form.get("all") == "yes":
        packages = await rule_store.offered_packages(session, device_id=device_id)
        if packages == []:
            raise InvalidInput(
                "no update on this device is offered: package rules ignore, hold or skip each"
            )
    elif form.get("package"):
        packages = [form["package"]]
    else:
        raise InvalidInput("choose a package to update, or all of them")
    try:
        await commands.create_for_device(
            session,
            device_id=device_id,
            packages=packages,
            actor=user_actor(request, admin),
            now=now,
            expires_in=state.settings.command_expiry,
        )
    except DomainError as refused:
        error = refusal_for_fragment(request, refused)  # the panel says what was refused
        return await _device_panel(request, console, session, device_id, error=error)
    await work.commit()
    if wants_fragment(request):
        return await _device_panel(request, console, session, device_id)
    return RedirectResponse(f"/devices/{device_id}#device-commands", status_code=303)


@router.post("/commands/{command_id}/cancel")
async def cancel_command(
    command_id: str,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    command_id = canonical_id(command_id, "command")
    view = form.get("view", LIST_VIEW)
    error: str | None = None
    try:
        await commands.cancel(
            session, command_id=command_id, actor=user_actor(request, admin), now=now
        )
    except DomainError as refused:
        error = refusal_for_fragment(request, refused)
    else:
        await work.commit()
    row = await queries.command_row(session, command_id=command_id)
    if view == DEVICE_VIEW:
        if wants_fragment(request):
            return await _device_panel(
                request, console, session, row.command.device_id, error=error
            )
        return RedirectResponse(f"/devices/{row.command.device_id}#device-commands", 303)
    if wants_fragment(request):
        return console.render(request, "partials/commands/row.html", {"row": row, "error": error})
    return RedirectResponse("/commands", status_code=303)


@router.post("/updates/run")
async def run_package(
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """RUN_UPDATES of ``package`` on every device waiting for it (from ``source``, when the
    form names one: the Updates pages list a package per source). The button asks first
    (``hx-confirm``) and then sends ``confirmed=yes``; a form posted without it (no script)
    gets a page that asks, with a form that confirms."""
    package = form.get("package", "")
    source = form.get("source") or None
    if not 1 <= len(package) <= MAX_IDENTIFIER:
        raise InvalidInput(f"name a package id of 1 to {MAX_IDENTIFIER} characters")
    if source is not None and source not in SOURCES:
        raise InvalidInput(f"no source {source[:80]!r}: use one of {', '.join(SOURCES)}")
    if form.get("confirmed") != "yes":
        preview = await update_queries.run_preview(
            session, package=package, source=source, offline_before=state.liveness.cutoff(now)
        )
        return console.render(
            request,
            "pages/commands/confirm_run.html",
            {"package": package, "source": source, "preview": preview},
        )
    try:
        created = await commands.create_for_package(
            session,
            package=package,
            source=source,
            actor=user_actor(request, admin),
            now=now,
            expires_in=state.settings.command_expiry,
        )
    except DomainError as refused:
        if not wants_fragment(request):
            raise
        return console.render(
            request, "partials/commands/run_refused.html", {"message": refused.message}
        )
    await work.commit()
    # The list, where the new commands show their progress (how many were skipped, and a
    # link to their deployment's summary).
    target = f"/commands?deployment={created.deployment.id}"
    if created.skipped:
        target += f"&skipped={created.skipped}"
    if created.skipped_by_rules:
        target += f"&held={created.skipped_by_rules}"
    if wants_fragment(request):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
