"""Console pages for enrolling PCs: the agent download, the install command line, and the
enrollment secrets installers are given."""

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from lunaris_server.accounts import flash
from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.accounts.flash import Flash
from lunaris_server.agents import files
from lunaris_server.agents import service as agents
from lunaris_server.console.deps import CheckedForm, ConsoleDep
from lunaris_server.core.errors import DomainError, InvalidInput, NotFound
from lunaris_server.core.settings import Settings
from lunaris_server.enrollment import service as enrollment
from lunaris_server.enrollment.service import CreatedSecret
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep
from lunaris_server.web.unit_of_work import UnitOfWork, WorkDep

router = APIRouter(include_in_schema=False)

FLASH_PAGE = "settings"
"""Where a new secret is shown once: the settings page, after the form's redirect."""
SECRETS = "/settings#enrollment-secrets"


def api_base_url(settings: Settings) -> str:
    """What an installer is given: the configured public address (never the request's
    ``Host`` header, which the client chooses)."""
    return f"{settings.resolved_public_url}/api"


async def _render(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    *,
    created: list[Flash] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    user = request.state.console_user
    return console.render(
        request,
        "pages/enrollment/settings.html",
        {
            "tab": "agents",
            "api_url": api_base_url(state.settings),
            "installer": await agents.latest(state.settings.resolved_agent_downloads_dir),
            "secrets": await enrollment.list_secrets(session) if user.is_admin else [],
            "created": created or [],
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/settings")
async def settings_page(
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    created = await flash.take(request, session, page=FLASH_PAGE, now=now)
    return await _render(request, console, session, state, created=created)


async def _shown_once(
    request: Request, work: UnitOfWork, created: CreatedSecret, now: datetime
) -> Response:
    """The plaintext waits for the settings page in this session (it is stored hashed);
    the redirect lets a reload of that page create nothing."""
    secret = Flash(name=created.secret.name, plaintext=created.plaintext)
    await flash.leave(request, work.session, page=FLASH_PAGE, flash=secret, now=now)
    await work.commit()
    return RedirectResponse(SECRETS, status_code=303)


def _optional_positive_int(form: dict[str, str], field: str, label: str) -> int | None:
    text = form.get(field, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 10_000_000:
        raise InvalidInput(f"{label} must be a whole number of at least 1")
    return int(text)


@router.post("/settings/enrollment-secrets")
async def create_secret(
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    try:
        expires_in_days = _optional_positive_int(form, "expires_in_days", "Expires in (days)")
        created = await enrollment.create_secret(
            session,
            name=form.get("name", ""),
            expires_in=timedelta(days=expires_in_days) if expires_in_days else None,
            max_uses=_optional_positive_int(form, "max_uses", "Max uses"),
            now=now,
            actor=user_actor(request, admin),
        )
    except DomainError as refused:
        return await _render(
            request,
            console,
            session,
            state,
            error=refused.message,
            status_code=refused.status_code,
        )
    return await _shown_once(request, work, created, now)


@router.post("/settings/enrollment-secrets/{secret_id}/revoke")
async def revoke_secret(
    secret_id: RowId,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    await enrollment.revoke_secret(
        session, secret_id=secret_id, now=now, actor=user_actor(request, admin)
    )
    await work.commit()
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/enrollment-secrets/{secret_id}/rotate")
async def rotate_secret(
    secret_id: RowId,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    try:
        created = await enrollment.rotate_secret(
            session, secret_id=secret_id, now=now, actor=user_actor(request, admin)
        )
    except DomainError as refused:
        return await _render(
            request, console, session, state, error=refused.message, status_code=refused.status_code
        )
    return await _shown_once(request, work, created, now)


@router.get("/downloads/{name}")
async def download_installer(name: str, _user: ConsoleUser, state: StateDep) -> FileResponse:
    """An agent version's MSI, by its own name or (the newest) as ``lunaris-agent.msi``;
    saved under the name asked for, which the Settings page's msiexec line installs."""
    folder = state.settings.resolved_agent_downloads_dir
    stored = name
    if name == files.LATEST_NAME:
        newest = await agents.latest(folder)
        stored = newest.name if newest is not None else name
    path = files.path_of(folder, stored)
    if path is None:
        raise NotFound(f"no installer named {name}")
    return FileResponse(path, media_type="application/x-msi", filename=name)
