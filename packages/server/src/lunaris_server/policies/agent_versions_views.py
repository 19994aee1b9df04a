"""Settings → Agent versions: the agent MSIs the server offers (admins add one by upload and
remove one), how many devices run each agent version, and the targets that move the fleet
or a group to a version (admins set and remove them). Lives with the policies: its targets
are the scheduler's."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from lunaris_protocol import MAX_AGENT_VERSION
from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.agents import service as agents
from lunaris_server.console.csrf import FORM_FIELD
from lunaris_server.console.deps import CheckedForm, ConsoleDep
from lunaris_server.core.errors import DomainError, Forbidden, InvalidInput
from lunaris_server.devices import groups
from lunaris_server.devices.models import Device
from lunaris_server.policies import agent_targets
from lunaris_server.web.deps import NowDep, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)

PAGE = "/settings/agent-versions"
CHUNK = 1 << 20


async def _render(
    request: Request,
    console: ConsoleDep,
    session: AsyncSession,
    state: StateDep,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    versions = await agents.list_versions(state.settings.resolved_agent_downloads_dir)
    running = await session.execute(
        select(Device.agent_version, func.count())
        .where(Device.revoked_at.is_(None))
        .group_by(Device.agent_version)
    )
    targets = await agent_targets.list_targets(session)
    every_group = await groups.list_groups(session)
    context: dict[str, Any] = {
        "tab": "agent-versions",
        "versions": versions,
        "running": sorted(running.all(), key=lambda row: (-row[1], row[0])),
        "targets": targets,
        "progress": await agent_targets.progress(session, targets),
        "group_names": {g.id: g.name for g in every_group},
        "groups": every_group,
        "error": error,
    }
    return console.render(request, "pages/agents/versions.html", context, status_code=status_code)


async def _refused(
    request: Request, console: ConsoleDep, work: WorkDep, state: StateDep, refused: DomainError
) -> Response:
    """The page again, saying why: nothing was changed."""
    return await _render(
        request,
        console,
        work.session,
        state,
        error=refused.message,
        status_code=refused.status_code,
    )


async def _commit_and_return(work: WorkDep) -> Response:
    await work.commit()
    return RedirectResponse(PAGE, status_code=303)


@router.get(PAGE)
async def agent_versions_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
) -> Response:
    return await _render(request, console, session, state)


async def _checked_upload(request: Request, console: ConsoleDep) -> tuple[str, UploadFile]:
    """The upload form (multipart: the CSRF token, the version, the file), once its token
    matched the session; 403 otherwise."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "multipart/form-data":
        raise InvalidInput("the upload form is sent as multipart/form-data")
    form = await request.form(max_files=1, max_fields=4, max_part_size=4096)
    token, version, upload = form.get(FORM_FIELD), form.get("version"), form.get("file")
    if not isinstance(token, str) or not console.csrf.is_valid(
        console.csrf_binding(request), token
    ):
        await form.close()
        raise Forbidden("the form has expired or did not come from this console; reload the page")
    if not isinstance(version, str) or not isinstance(upload, UploadFile):
        await form.close()
        raise InvalidInput("choose the MSI and give its version")
    return version.strip(), upload


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


@router.post(PAGE)
async def add_agent_version(
    request: Request,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    upload: Annotated[tuple[str, UploadFile], Depends(_checked_upload)],
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    version, file = upload
    try:
        if not agents.is_version(version):
            raise InvalidInput(
                f"{version[:MAX_AGENT_VERSION]!r} is not an agent version (such as 0.2.0)"
            )
        await agents.add_version(
            work.session,
            state.settings.resolved_agent_downloads_dir,
            version,
            _chunks(file),
            actor=user_actor(request, admin),
            now=now,
        )
    except DomainError as refused:
        return await _refused(request, console, work, state, refused)
    finally:
        await file.close()
    return await _commit_and_return(work)


@router.post(PAGE + "/{version}/remove")
async def remove_agent_version(
    version: str,
    request: Request,
    admin: ConsoleAdmin,
    _form: CheckedForm,
    console: ConsoleDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    try:
        await agents.remove_version(
            work.session,
            state.settings.resolved_agent_downloads_dir,
            version,
            actor=user_actor(request, admin),
            now=now,
        )
    except DomainError as refused:
        return await _refused(request, console, work, state, refused)
    return await _commit_and_return(work)


def _whole(form: dict[str, str], name: str, default: int) -> int:
    text = form.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise InvalidInput(f"{name.replace('_', ' ')}: a whole number from 1 to 10000")
    return int(text)


@router.post("/settings/agent-targets")
async def set_agent_target(
    request: Request,
    admin: ConsoleAdmin,
    form: CheckedForm,
    console: ConsoleDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    try:
        scope = form.get("scope", "fleet")
        if scope != "fleet" and not scope.isdigit():
            raise InvalidInput("choose the fleet or a group")
        version = await agents.get_version(
            state.settings.resolved_agent_downloads_dir, form.get("version", "")
        )
        await agent_targets.set_target(
            work.session,
            group_id=None if scope == "fleet" else int(scope),
            version=version,
            force=form.get("force") == "yes",
            at_once=_whole(form, "at_once", 50),
            halt_after_failures=_whole(form, "halt_after_failures", 3),
            actor=user_actor(request, admin),
            now=now,
        )
    except DomainError as refused:
        return await _refused(request, console, work, state, refused)
    return await _commit_and_return(work)


@router.post("/settings/agent-targets/remove")
async def remove_agent_target(
    request: Request,
    admin: ConsoleAdmin,
    form: CheckedForm,
    console: ConsoleDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    scope = form.get("scope", "")
    try:
        if scope != "fleet" and not scope.isdigit():
            raise InvalidInput("no such target")
        await agent_targets.remove_target(
            work.session,
            group_id=None if scope == "fleet" else int(scope),
            actor=user_actor(request, admin),
            now=now,
        )
    except DomainError as refused:
        return await _refused(request, console, work, state, refused)
    return await _commit_and_return(work)
