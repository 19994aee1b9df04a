"""Console sessions are server-side: logout, disabling, a new password and "sign out
everywhere" end them at once, and a cookie kept from before is refused (both databases)."""

from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from lunaris_server.accounts import service as accounts
from lunaris_server.accounts.models import UserSession
from lunaris_server.audit.service import CLI_ACTOR
from tests.console.helpers import csrf_token, login, page_token
from tests.support import app_state, create_api_token, create_user

SESSION_COOKIE = "lunaris_session"


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    assert (await login(client)).status_code == 303
    return client


async def replay(app: FastAPI, cookie: str) -> tuple[int, int]:
    """What a console page and the JSON API answer to a kept cookie, from another client."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as thief:
        thief.cookies.set(SESSION_COOKIE, cookie)
        page = await thief.get("/devices")
        api = await thief.get("/api/auth/me")
    return page.status_code, api.status_code


async def test_a_cookie_kept_across_logout_is_refused(app, admin):
    cookie = admin.cookies[SESSION_COOKIE]
    assert await replay(app, cookie) == (200, 200)
    token = await page_token(admin)
    assert (await admin.post("/logout", data={"csrf_token": token})).status_code == 303
    assert await replay(app, cookie) == (303, 401)


async def test_a_cookie_kept_across_an_api_logout_is_refused(app, admin):
    cookie = admin.cookies[SESSION_COOKIE]
    assert (await admin.post("/api/auth/logout")).status_code == 204
    assert await replay(app, cookie) == (303, 401)


async def test_sign_out_everywhere_ends_every_session_of_that_user(app, admin, browser_client):
    await create_user(app, "vera", "viewer password", role="viewer")
    assert (await login(browser_client, "vera", "viewer password")).status_code == 303
    vera_cookie = browser_client.cookies[SESSION_COOKIE]
    users = (await admin.get("/settings/users")).text
    vera_id = users.split('data-username="vera"')[1].split("/settings/users/")[1].split("/")[0]
    response = await admin.post(
        f"/settings/users/{vera_id}/sign-out", data={"csrf_token": await page_token(admin)}
    )
    assert response.status_code == 303
    assert await replay(app, vera_cookie) == (303, 401)
    assert (await admin.get("/devices")).status_code == 200  # the admin's own goes on


async def test_an_htmx_request_after_the_session_ended_returns_to_the_page(app, client):
    response = await client.get(
        "/dashboard/stats",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/devices?q=ber"},
    )
    assert response.headers["HX-Redirect"] == "/login?next=%2Fdevices%3Fq%3Dber"


async def test_disabling_a_user_ends_their_sessions(app, admin, browser_client):
    await create_user(app, "vera", "viewer password", role="viewer")
    assert (await login(browser_client, "vera", "viewer password")).status_code == 303
    vera_cookie = browser_client.cookies[SESSION_COOKIE]
    vera = await user_id(app, "vera")
    token = await page_token(admin)
    disabled = await admin.post(f"/settings/users/{vera}/disable", data={"csrf_token": token})
    assert disabled.status_code == 303
    assert await replay(app, vera_cookie) == (303, 401)
    # Enabled again, the old session stays ended: vera logs in afresh.
    assert (
        await admin.post(f"/settings/users/{vera}/enable", data={"csrf_token": token})
    ).is_redirect
    assert await replay(app, vera_cookie) == (303, 401)


async def test_a_new_password_ends_every_session_of_the_user(app, admin):
    cookie = admin.cookies[SESSION_COOKIE]
    state = app_state(app)
    async with state.database.session() as session:
        await accounts.set_password(
            session,
            user_id=await user_id(app, "admin"),
            password="a new passphrase",
            now=state.clock(),
            actor=CLI_ACTOR,
        )
        await session.commit()
    assert await replay(app, cookie) == (303, 401)
    assert (await login(admin, password="a new passphrase")).status_code == 303


async def test_a_viewer_cannot_sign_others_out(app, admin, browser_client):
    await create_user(app, "vera", "viewer password", role="viewer")
    assert (await login(browser_client, "vera", "viewer password")).status_code == 303
    admin_id = await user_id(app, "admin")
    token = await page_token(browser_client)
    response = await browser_client.post(
        f"/settings/users/{admin_id}/sign-out", data={"csrf_token": token}
    )
    assert response.status_code == 403
    assert (await admin.get("/devices")).status_code == 200
    admin_token = await page_token(admin)
    missing = await admin.post("/settings/users/999999/sign-out", data={"csrf_token": admin_token})
    assert missing.status_code == 404


async def test_the_sessions_page_lists_and_ends_your_own_sessions(app, admin, browser_client):
    hostile = '<img src=x onerror=alert(1)> "quoted" Mozilla/5.0'
    browser_client.headers["User-Agent"] = hostile
    assert (await login(browser_client)).status_code == 303  # the same user, another browser
    other_cookie = browser_client.cookies[SESSION_COOKIE]
    page = await admin.get("/settings/sessions")
    assert page.status_code == 200
    assert page.text.count("data-session=") == 2
    assert page.text.count("this session") == 1
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "hx-disable" in page.text.split('id="sessions"')[0].rsplit("<div", 1)[1]

    other_id = page.text.split("&lt;img")[0].rsplit('data-session="', 1)[1].split('"')[0]
    token = csrf_token(page.text)
    ended = await admin.post(f"/settings/sessions/{other_id}/end", data={"csrf_token": token})
    assert (ended.status_code, ended.headers["location"]) == (303, "/settings/sessions")
    assert await replay(app, other_cookie) == (303, 401)
    assert (await admin.get("/settings/sessions")).text.count("data-session=") == 1
    audit = (await admin.get("/api/audit", params={"action": "session.end"})).json()
    assert audit["total"] == 1

    # Your own current one: you are logged out.
    own = (await admin.get("/settings/sessions")).text
    own_id = own.split('data-session="')[1].split('"')[0]
    response = await admin.post(f"/settings/sessions/{own_id}/end", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert (await admin.get("/devices")).status_code == 303


async def test_another_users_session_is_not_found_and_stays(app, admin, browser_client):
    await create_user(app, "vera", "viewer password", role="viewer")
    assert (await login(browser_client, "vera", "viewer password")).status_code == 303
    vera_page = (await browser_client.get("/settings/sessions")).text
    vera_session = vera_page.split('data-session="')[1].split('"')[0]
    token = await page_token(admin)
    for target in (vera_session, "0", "abc", str(2**40)):
        response = await admin.post(f"/settings/sessions/{target}/end", data={"csrf_token": token})
        assert response.status_code in (400, 404), (target, response.status_code)
    no_csrf = await admin.post(f"/settings/sessions/{vera_session}/end")
    assert no_csrf.status_code == 403
    assert (await browser_client.get("/devices")).status_code == 200


async def test_last_seen_is_written_at_most_once_a_minute(app, admin, clock):
    async def last_seen() -> datetime:
        async with app_state(app).database.session() as session:
            return (await session.scalars(select(UserSession.last_seen_at))).one()

    logged_in = await last_seen()
    clock.advance(seconds=30)
    assert (await admin.get("/devices")).status_code == 200
    assert await last_seen() == logged_in
    clock.advance(seconds=31)
    assert (await admin.get("/devices")).status_code == 200
    assert await last_seen() == clock.now


async def test_api_tokens_are_not_sessions(app, admin):
    api_token = await create_api_token(app, "admin")
    token = await page_token(admin)
    assert (await admin.post("/logout", data={"csrf_token": token})).status_code == 303
    headers = {"Authorization": f"Bearer {api_token}"}
    assert (await admin.get("/api/auth/me", headers=headers)).status_code == 200
    admin_id = await user_id(app, "admin")
    # Signed out everywhere, the token still works; disabled, it does not.
    await create_user(app, "root", "another admin", role="admin")
    assert (await login(admin, "root", "another admin")).status_code == 303
    token = await page_token(admin)
    await admin.post(f"/settings/users/{admin_id}/sign-out", data={"csrf_token": token})
    assert (await admin.get("/api/auth/me", headers=headers)).status_code == 200
    await admin.post(f"/settings/users/{admin_id}/disable", data={"csrf_token": token})
    assert (await admin.get("/api/auth/me", headers=headers)).status_code == 401


async def user_id(app: FastAPI, username: str) -> int:
    async with app_state(app).database.session() as session:
        return (await accounts.get_user_by_name(session, username=username)).id
