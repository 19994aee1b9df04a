"""Console pages for accounts: log in and out, users (admins), the user's own API tokens."""

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from lunaris_server.accounts import flash, sessions
from lunaris_server.accounts import service as accounts
from lunaris_server.accounts.cookies import clear_session_cookie, set_session_cookie
from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.accounts.flash import Flash
from lunaris_server.accounts.models import Role
from lunaris_server.audit.service import Actor
from lunaris_server.console.csrf import SESSION_COOKIE
from lunaris_server.console.deps import CheckedForm, ConsoleDep
from lunaris_server.console.web import LOGIN_NONCE_COOKIE
from lunaris_server.core.errors import DomainError, NotAuthenticated, TooManyRequests
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep, client_ip
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)

TOKENS_FLASH_PAGE = "tokens"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or ``https://...``."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/login")
async def login_page(
    request: Request,
    console: ConsoleDep,
    next_: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> Response:
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or secrets.token_urlsafe(32)
    response = console.render(
        request,
        "pages/accounts/login.html",
        {"next": _safe_next(next_), "error": None, "username": ""},
        csrf_binding=console.csrf_binding(request) or nonce,
    )
    # Binds the login form's CSRF token before there is a session (login CSRF).
    response.set_cookie(
        LOGIN_NONCE_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        secure=console.state.settings.cookie_secure,
        samesite="strict",
        path="/login",
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    form: CheckedForm,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    username = form.get("username", "")[:64]
    try:
        user = await accounts.authenticate_password(
            session,
            username=username,
            password=form.get("password", "")[:1024],
            now=now,
            actor=Actor(f"user:{username}", client_ip(request)),
            throttle=state.login_throttle,
        )
    except (NotAuthenticated, TooManyRequests) as refused:
        await work.commit()  # keeps the audit entry of the failed login
        page = console.render(
            request,
            "pages/accounts/login.html",
            {"next": _safe_next(form.get("next")), "error": refused.message, "username": username},
            status_code=refused.status_code,
        )
        page.headers.update(refused.headers or {})
        return page
    started = await sessions.start(
        session,
        user=user,
        now=now,
        lifetime=timedelta(seconds=state.settings.session_max_age_s),
        user_agent=request.headers.get("user-agent"),
        ip=client_ip(request),
    )
    await work.commit()
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    set_session_cookie(response, state.settings, started.cookie)
    response.delete_cookie(LOGIN_NONCE_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(
    request: Request,
    _form: CheckedForm,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """Ends the session in the database, not only in this browser."""
    await sessions.logout(
        session,
        cookie=request.cookies.get(SESSION_COOKIE),
        now=now,
        ip=client_ip(request),
    )
    await work.commit()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, state.settings)
    return response


@router.get("/settings/users")
async def users_page(
    request: Request, _admin: ConsoleAdmin, console: ConsoleDep, session: SessionDep
) -> Response:
    return await _render_users(request, console, session)


async def _render_users(
    request: Request,
    console: ConsoleDep,
    session: SessionDep,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return console.render(
        request,
        "pages/accounts/users.html",
        {
            "tab": "users",
            "users": await accounts.list_users(session),
            "roles": list(Role),
            "error": error,
        },
        status_code=status_code,
    )


@router.post("/settings/users")
async def add_user(
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    try:
        await accounts.add_user(
            session,
            username=form.get("username", "").strip(),
            password=form.get("password", ""),
            role=form.get("role", Role.VIEWER.value),
            now=now,
            actor=user_actor(request, admin),
        )
    except DomainError as refused:
        # A refused insert leaves the transaction unusable: start afresh to list the users.
        await session.rollback()
        await session.refresh(admin)
        return await _render_users(
            request, console, session, error=refused.message, status_code=refused.status_code
        )
    await work.commit()
    return RedirectResponse("/settings/users", status_code=303)


@router.post("/settings/users/{user_id}/role")
async def change_role(
    user_id: RowId,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    await accounts.set_role(
        session,
        user_id=user_id,
        role=form.get("role", ""),
        now=now,
        actor=user_actor(request, admin),
    )
    await work.commit()
    return RedirectResponse("/settings/users", status_code=303)


@router.post("/settings/users/{user_id}/disable")
async def disable_user(
    user_id: RowId,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    actor = user_actor(request, admin)
    await accounts.set_disabled(session, user_id=user_id, disabled=True, now=now, actor=actor)
    await work.commit()
    return RedirectResponse("/settings/users", status_code=303)


@router.post("/settings/users/{user_id}/sign-out")
async def sign_out_everywhere(
    user_id: RowId,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    """Ends every session of the user at once (their API tokens keep working)."""
    user = await accounts.get_user(session, user_id=user_id)
    await sessions.sign_out_everywhere(
        session, user=user, now=now, actor=user_actor(request, admin)
    )
    await work.commit()
    return RedirectResponse("/settings/users", status_code=303)


@router.post("/settings/users/{user_id}/enable")
async def enable_user(
    user_id: RowId,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    actor = user_actor(request, admin)
    await accounts.set_disabled(session, user_id=user_id, disabled=False, now=now, actor=actor)
    await work.commit()
    return RedirectResponse("/settings/users", status_code=303)


@router.get("/settings/tokens")
async def tokens_page(
    request: Request, user: ConsoleUser, console: ConsoleDep, session: SessionDep, now: NowDep
) -> Response:
    created = await flash.take(request, session, page=TOKENS_FLASH_PAGE, now=now)
    return console.render(
        request,
        "pages/accounts/tokens.html",
        {
            "tab": "tokens",
            "tokens": await accounts.list_api_tokens(session, user=user),
            "created": created,
        },
    )


@router.post("/settings/tokens")
async def create_token(
    request: Request,
    form: CheckedForm,
    user: ConsoleUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    created = await accounts.add_api_token(
        session,
        user=user,
        name=form.get("name", ""),
        now=now,
        actor=user_actor(request, user),
    )
    # Stored hashed: the plaintext waits for the tokens page in this session, shown once.
    shown = Flash(name=created.token.name, plaintext=created.plaintext)
    await flash.leave(request, session, page=TOKENS_FLASH_PAGE, flash=shown, now=now)
    await work.commit()
    return RedirectResponse("/settings/tokens", status_code=303)


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke_token(
    token_id: RowId,
    request: Request,
    _form: CheckedForm,
    user: ConsoleUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    await accounts.revoke_api_token(
        session, user=user, token_id=token_id, now=now, actor=user_actor(request, user)
    )
    await work.commit()
    return RedirectResponse("/settings/tokens", status_code=303)
