"""Post/redirect/get: a console form that creates something answers 303 to a page, so a
reload (or Back, then Forward) asks for the page again instead of creating a second one.

A secret shown once after the redirect (a new enrollment secret, a rotated one, an API
token) waits for that page in the server-side session: it is never in a URL, the page that
shows it takes it, and a reload shows it no more. Another session of the same user never
sees it, and one left unread expires.
"""

import asyncio
import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from lunaris_server.accounts.flash import Flash, FlashSeal
from lunaris_server.accounts.models import ApiToken, SessionFlash
from lunaris_server.enrollment.models import EnrollmentSecret
from tests.console.helpers import login, page_token
from tests.support import FakeClock, app_state, create_user, register_body

SECRET = re.compile(r"lne_[A-Za-z0-9_-]+")
TOKEN = re.compile(r"lna_[A-Za-z0-9_-]+")


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    assert (await login(client)).status_code == 303
    return client


async def count(app: FastAPI, table: type[EnrollmentSecret] | type[ApiToken]) -> int:
    async with app_state(app).database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def flash_rows(app: FastAPI) -> list[SessionFlash]:
    async with app_state(app).database.session() as session:
        return list(await session.scalars(select(SessionFlash)))


def redirect_target(response: httpx.Response, *secrets: str) -> str:
    """The 303's Location: a path on this site that carries none of the secrets."""
    assert response.status_code == 303, (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    for secret in secrets:
        assert secret not in location
    return location


def only(pattern: re.Pattern[str], html: str) -> str:
    found = set(pattern.findall(html))
    assert len(found) == 1, found
    return found.pop()


async def test_creating_an_enrollment_secret_redirects_and_a_reload_creates_nothing(app, admin):
    token = await page_token(admin, "/settings")
    before = await count(app, EnrollmentSecret)
    posted = await admin.post(
        "/settings/enrollment-secrets", data={"name": "Berlin rollout", "csrf_token": token}
    )
    location = redirect_target(posted)
    assert SECRET.search(posted.text) is None  # the redirect itself shows nothing
    assert location.split("?")[0].split("#")[0] == "/settings"

    shown = await admin.get(location)
    assert shown.status_code == 200
    assert "shown only once" in shown.text
    secret = only(SECRET, shown.text)
    redirect_target(posted, secret)
    assert secret not in str(shown.url)
    assert await count(app, EnrollmentSecret) == before + 1

    for _ in range(3):  # reloads: the secret is gone and nothing more was created
        again = await admin.get(location)
        assert again.status_code == 200
        assert SECRET.search(again.text) is None
        assert "shown only once" not in again.text
        assert "Berlin rollout" in again.text
    assert await count(app, EnrollmentSecret) == before + 1

    # It is the real secret: an installer enrolls a PC with it.
    assert (await admin.post("/api/agent/register", json=register_body(secret))).is_success


async def test_rotating_an_enrollment_secret_redirects_and_shows_the_new_one_once(app, admin):
    token = await page_token(admin, "/settings")
    created = await admin.post(
        "/settings/enrollment-secrets", data={"name": "Rollout", "csrf_token": token}
    )
    old = only(SECRET, (await admin.get(redirect_target(created))).text)

    rotated = await admin.post("/settings/enrollment-secrets/1/rotate", data={"csrf_token": token})
    location = redirect_target(rotated, old)
    shown = (await admin.get(location)).text
    new = only(SECRET, shown)
    assert new != old
    redirect_target(rotated, new)
    assert await count(app, EnrollmentSecret) == 2

    reloaded = (await admin.get(location)).text
    assert SECRET.search(reloaded) is None
    assert reloaded.count("Rollout") == 2
    assert "revoked" in reloaded
    assert await count(app, EnrollmentSecret) == 2
    assert (await admin.post("/api/agent/register", json=register_body(new))).is_success


async def test_creating_an_api_token_redirects_and_shows_it_once(app, admin):
    token = await page_token(admin)
    posted = await admin.post("/settings/tokens", data={"name": "report", "csrf_token": token})
    location = redirect_target(posted)
    assert location.split("?")[0].split("#")[0] == "/settings/tokens"

    shown = (await admin.get(location)).text
    plaintext = only(TOKEN, shown)
    redirect_target(posted, plaintext)
    assert await count(app, ApiToken) == 1
    me = await admin.get("/api/auth/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.status_code == 200

    reloaded = (await admin.get(location)).text
    assert TOKEN.search(reloaded) is None
    assert "report" in reloaded
    assert await count(app, ApiToken) == 1


async def test_the_secret_waits_for_its_own_page_in_its_own_session(app, admin, browser_client):
    """Another page (or a live fragment) does not take it, nor does another login of the
    same user: only the page it was made for, in the session that made it."""
    assert (await login(browser_client)).status_code == 303  # the same admin, elsewhere
    token = await page_token(admin, "/settings")
    posted = await admin.post(
        "/settings/enrollment-secrets", data={"name": "Munich", "csrf_token": token}
    )
    location = redirect_target(posted)
    for path in ("/", "/devices", "/settings/tokens", "/settings/users"):
        assert SECRET.search((await admin.get(path)).text) is None, path
    elsewhere = (await browser_client.get(location)).text
    assert SECRET.search(elsewhere) is None
    assert "Munich" in elsewhere
    assert SECRET.search((await admin.get(location)).text)


async def test_a_secret_left_unread_expires(admin, clock: FakeClock):
    token = await page_token(admin, "/settings")
    posted = await admin.post(
        "/settings/enrollment-secrets", data={"name": "Late", "csrf_token": token}
    )
    location = redirect_target(posted)
    clock.advance(minutes=10)
    late = (await admin.get(location)).text
    assert SECRET.search(late) is None
    assert "Late" in late


async def test_logging_out_drops_a_secret_left_unread(app, admin):
    token = await page_token(admin, "/settings")
    posted = await admin.post(
        "/settings/enrollment-secrets", data={"name": "Left", "csrf_token": token}
    )
    location = redirect_target(posted)
    assert len(await flash_rows(app)) == 1
    assert (await admin.post("/logout", data={"csrf_token": token})).status_code == 303
    assert await flash_rows(app) == []
    assert (await login(admin)).status_code == 303
    assert SECRET.search((await admin.get(location)).text) is None


async def test_bad_input_is_answered_on_the_page_and_creates_nothing(app, admin):
    """A refused form is shown again with what was wrong (4xx): a reload re-sends it and is
    refused again, so it may stay a direct answer."""
    token = await page_token(admin, "/settings")
    for _ in range(2):
        bad = await admin.post(
            "/settings/enrollment-secrets",
            data={"name": "x", "max_uses": "0", "csrf_token": token},
        )
        assert bad.status_code == 422
        assert "Max uses must be" in bad.text
    assert await count(app, EnrollmentSecret) == 0


async def test_the_database_never_holds_the_secret_in_clear(app, admin):
    token = await page_token(admin, "/settings")
    posted = await admin.post(
        "/settings/enrollment-secrets", data={"name": "Sealed", "csrf_token": token}
    )
    (row,) = await flash_rows(app)
    secret = only(SECRET, (await admin.get(redirect_target(posted))).text)
    assert secret not in row.sealed
    assert "Sealed" not in row.sealed
    assert await flash_rows(app) == []  # taken by the page that showed it


def test_a_seal_opens_only_with_its_cookie_session_and_page():
    seal = FlashSeal("server key")
    shown = Flash(name="Berlin", plaintext="lne_abc")
    sealed = seal.seal(shown, cookie="lns_cookie", session_id=7, page="settings")
    assert seal.open(sealed, cookie="lns_cookie", session_id=7, page="settings") == shown
    assert seal.open(sealed, cookie="lns_other", session_id=7, page="settings") is None
    assert seal.open(sealed, cookie="lns_cookie", session_id=8, page="settings") is None
    assert seal.open(sealed, cookie="lns_cookie", session_id=7, page="tokens") is None
    assert (
        FlashSeal("another key").open(sealed, cookie="lns_cookie", session_id=7, page="settings")
        is None
    )
    assert seal.open("not a seal", cookie="lns_cookie", session_id=7, page="settings") is None


async def test_two_forms_before_the_page_shows_both_and_two_loads_share_them_once(admin):
    """Two tabs created a secret each before either page loaded: the page shows both. Two
    loads at once: one of them shows them, the other nothing (one delete wins)."""
    token = await page_token(admin, "/settings")
    for name in ("First", "Second"):
        posted = await admin.post(
            "/settings/enrollment-secrets", data={"name": name, "csrf_token": token}
        )
        location = redirect_target(posted)
    both = (await admin.get(location)).text
    assert len(set(SECRET.findall(both))) == 2
    assert 'id="new-secret"' in both  # the newest keeps the id the copy button names

    posted = await admin.post(
        "/settings/enrollment-secrets", data={"name": "Third", "csrf_token": token}
    )
    pages = await asyncio.gather(*(admin.get(redirect_target(posted)) for _ in range(2)))
    assert sorted(len(set(SECRET.findall(page.text))) for page in pages) == [0, 1]
