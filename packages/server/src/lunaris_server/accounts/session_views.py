"""Settings → Sessions: the user's own console sessions, each of which they can end."""

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lunaris_server.accounts import sessions
from lunaris_server.accounts.cookies import clear_session_cookie
from lunaris_server.accounts.deps import ConsoleUser, user_actor
from lunaris_server.console.deps import CheckedForm, ConsoleDep
from lunaris_server.web.deps import NowDep, RowId, SessionDep, StateDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)


def _current_session_id(request: Request) -> int | None:
    user_session = getattr(request.state, "user_session", None)
    return user_session.id if user_session is not None else None


@router.get("/settings/sessions")
async def sessions_page(
    request: Request, user: ConsoleUser, console: ConsoleDep, session: SessionDep, now: NowDep
) -> Response:
    return console.render(
        request,
        "pages/accounts/sessions.html",
        {
            "tab": "sessions",
            "sessions": await sessions.list_open(session, user=user, now=now),
            "current_id": _current_session_id(request),
        },
    )


@router.post("/settings/sessions/{session_id}/end")
async def end_session(
    session_id: RowId,
    request: Request,
    _form: CheckedForm,
    user: ConsoleUser,
    session: SessionDep,
    work: WorkDep,
    state: StateDep,
    now: NowDep,
) -> Response:
    await sessions.end_own(
        session, user=user, session_id=session_id, now=now, actor=user_actor(request, user)
    )
    await work.commit()
    if session_id != _current_session_id(request):
        return RedirectResponse("/settings/sessions", status_code=303)
    response = RedirectResponse("/login", status_code=303)  # this one: logged out
    clear_session_cookie(response, state.settings)
    return response
