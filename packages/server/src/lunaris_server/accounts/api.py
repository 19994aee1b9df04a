"""Login, logout, and user administration."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from lunaris_protocol.text import IDENTIFIER
from lunaris_server.accounts import service as accounts
from lunaris_server.accounts import sessions
from lunaris_server.accounts.cookies import clear_session_cookie, set_session_cookie
from lunaris_server.accounts.deps import AdminUser, CurrentUser, user_actor
from lunaris_server.accounts.models import Role, User
from lunaris_server.audit.service import Actor
from lunaris_server.console.csrf import SESSION_COOKIE
from lunaris_server.console.web import get_console
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, SessionDep, StateDep, bearer_token, client_ip
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(prefix="/api", tags=["accounts"])


class LoginRequest(BaseModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64), IDENTIFIER]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User) -> "UserOut":
        return cls.model_validate(user, from_attributes=True)


class NewUserRequest(BaseModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64), IDENTIFIER]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    role: Role = Role.VIEWER


class NewTokenRequest(BaseModel):
    name: Annotated[str, StringConstraints(max_length=128), IDENTIFIER] = Field(default="api token")


class NewTokenOut(BaseModel):
    id: int
    name: str
    token: str
    """Shown once."""


@router.post("/auth/login", responses={**BODY_ERRORS, **error_responses(401, 429)})
async def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> UserOut:
    try:
        user = await accounts.authenticate_password(
            session,
            username=body.username,
            password=body.password,
            now=now,
            actor=Actor(f"user:{body.username}", client_ip(request)),
            throttle=state.login_throttle,
        )
    finally:
        # The audit entry of a failed login is kept too.
        await work.commit()
    started = await sessions.start(
        session,
        user=user,
        now=now,
        lifetime=timedelta(seconds=state.settings.session_max_age_s),
        user_agent=request.headers.get("user-agent"),
        ip=client_ip(request),
    )
    await work.commit()
    set_session_cookie(response, state.settings, started.cookie)
    return UserOut.of(user)


@router.post("/auth/logout", status_code=204)
async def logout(
    request: Request,
    response: Response,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> None:
    """Ends the cookie's session in the database, not only in this client."""
    await sessions.logout(
        session, cookie=request.cookies.get(SESSION_COOKIE), now=now, ip=client_ip(request)
    )
    await work.commit()
    clear_session_cookie(response, state.settings)


@router.get("/auth/me", responses=error_responses(401))
async def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


class CsrfTokenOut(BaseModel):
    csrf_token: str | None = Field(
        description="send as X-CSRF-Token with every change made with the session cookie;"
        " null when the request carries no session (API tokens need none)"
    )


@router.get("/auth/csrf-token", responses=error_responses(401))
async def csrf_token(request: Request, _user: CurrentUser) -> CsrfTokenOut:
    console = get_console(request)
    binding = None if bearer_token(request) else console.csrf_binding(request)
    return CsrfTokenOut(csrf_token=console.csrf.token_for(binding) if binding else None)


@router.get("/users", responses=error_responses(401, 403))
async def list_users(_admin: AdminUser, session: SessionDep) -> list[UserOut]:
    return [UserOut.of(u) for u in await accounts.list_users(session)]


@router.post("/users", status_code=201, responses={**BODY_ERRORS, **error_responses(401, 403, 409)})
async def add_user(
    body: NewUserRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> UserOut:
    user = await accounts.add_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        now=now,
        actor=user_actor(request, admin),
    )
    await work.commit()
    return UserOut.of(user)


@router.post(
    "/auth/tokens", status_code=201, responses={**BODY_ERRORS, **error_responses(401, 403)}
)
async def add_token(
    body: NewTokenRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> NewTokenOut:
    created = await accounts.add_api_token(
        session, user=user, name=body.name, now=now, actor=user_actor(request, user)
    )
    await work.commit()
    return NewTokenOut(id=created.token.id, name=created.token.name, token=created.plaintext)
