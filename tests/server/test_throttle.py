"""Rate limits on login and agent registration: the buckets, and the answers clients get."""

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select

from lunaris_server.app import create_app
from lunaris_server.audit.models import AuditEntry
from lunaris_server.enrollment import service as enrollment
from lunaris_server.web.throttle import LoginThrottle, RateLimiter, RegistrationThrottle
from tests.server.helpers import Ticks
from tests.support import app_state, create_secret, create_user, register_body

LOGIN = "/api/auth/login"
REGISTER = "/api/agent/register"


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    ticks = Ticks()
    limiter = RateLimiter(burst=3, per_minute=6, clock=ticks)  # one token every 10 s
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.spend("a")
    assert limiter.retry_after("a") == pytest.approx(10)
    assert limiter.retry_after("b") == 0  # keys are independent
    ticks.now = 4
    assert limiter.retry_after("a") == pytest.approx(6)
    ticks.now = 10
    assert limiter.retry_after("a") == 0


def test_the_number_of_keys_kept_is_bounded():
    limiter = RateLimiter(burst=1, per_minute=1, max_keys=2, clock=Ticks())
    for key in ("a", "b", "c"):
        limiter.spend(key)
    assert limiter.retry_after("a") == 0  # forgotten: the longest idle went first
    assert limiter.retry_after("c") > 0


def test_wrong_passwords_slow_down_one_place_without_locking_the_user_out():
    ticks = Ticks()
    throttle = LoginThrottle(failures_per_minute=1000, clock=ticks)
    for _ in range(LoginThrottle.FAILURES_BURST):
        throttle.attempt(address="198.51.100.7", username="admin")  # each a failure
    with pytest.raises(Exception, match="too many login attempts") as refused:
        throttle.attempt(address="198.51.100.7", username="admin")
    assert getattr(refused.value, "retry_after_s", 0) == 60
    throttle.attempt(address="192.0.2.1", username="admin")  # the user, elsewhere
    ticks.now = 60
    throttle.attempt(address="198.51.100.7", username="admin")


def test_registrations_with_wrong_secrets_are_held_back_per_address():
    throttle = RegistrationThrottle(per_secret_per_minute=1000)
    for n in range(RegistrationThrottle.FAILURES_BURST):
        throttle.attempt(address="198.51.100.7", secret=f"guess-{n}")  # each a failure
    with pytest.raises(Exception, match="too many registrations"):
        throttle.attempt(address="198.51.100.7", secret="another guess")
    throttle.attempt(address="192.0.2.1", secret="the real one")


async def _audit_count(app: FastAPI) -> int:
    async with app_state(app).database.session() as session:
        return await session.scalar(select(func.count()).select_from(AuditEntry)) or 0


async def test_repeated_failed_logins_get_429_with_retry_after(app, client_from):
    await create_user(app)
    attacker, admin = client_from("198.51.100.7"), client_from("192.0.2.1")
    wrong = {"username": "admin", "password": "guess"}
    for _ in range(LoginThrottle.FAILURES_BURST):
        assert (await attacker.post(LOGIN, json=wrong)).status_code == 401
    audited = await _audit_count(app)

    refused = await attacker.post(LOGIN, json={"username": "admin", "password": "correct horse"})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert await _audit_count(app) == audited  # refused before anything was checked

    allowed = await admin.post(LOGIN, json={"username": "admin", "password": "correct horse"})
    assert allowed.status_code == 200


async def test_the_console_login_form_shows_the_throttle(app, client_from):
    await create_user(app)
    browser = client_from("198.51.100.8")
    page = await browser.get("/login")
    form = {"username": "admin", "password": "guess"}
    # The login form is CSRF-protected: take its token from the page.
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for _ in range(LoginThrottle.FAILURES_BURST):
        failed = await browser.post("/login", data={**form, "csrf_token": token})
        assert failed.status_code == 401
    refused = await browser.post("/login", data={**form, "csrf_token": token})
    assert refused.status_code == 429
    assert "too many login attempts" in refused.text.lower()
    assert "retry-after" in refused.headers


async def test_registration_guessing_secrets_gets_429_and_spends_nothing(app, client_from):
    secret = await create_secret(app, max_uses=5)
    guesser, office = client_from("198.51.100.9"), client_from("192.0.2.10")
    for n in range(RegistrationThrottle.FAILURES_BURST):
        answer = await guesser.post(REGISTER, json=register_body(f"lun_enr_guess{n}"))
        assert answer.status_code == 401
    refused = await guesser.post(REGISTER, json=register_body(secret))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1

    enrolled = await office.post(REGISTER, json=register_body(secret))
    assert enrolled.status_code == 200
    async with app_state(app).database.session() as session:
        listed = await enrollment.list_secrets(session)
    assert [s.uses for s in listed] == [1]  # the refused attempt spent no use


async def test_registration_limits_come_from_the_settings(settings):
    # One a minute per secret, after a burst of ten minutes' worth.
    tight = settings.model_copy(update={"register_per_secret_per_minute": 1})
    application = create_app(tight)
    async with LifespanManager(application):
        secret = await create_secret(application)
        transport = httpx.ASGITransport(app=application, client=("192.0.2.20", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as office:
            answers = [
                (await office.post(REGISTER, json=register_body(secret))).status_code
                for _ in range(11)
            ]
    assert answers == [200] * 10 + [429]


def test_a_success_gives_its_token_back_and_ipv6_clients_share_their_64():
    throttle = LoginThrottle(failures_per_minute=2, clock=Ticks())
    for _ in range(5):
        throttle.attempt(address="2001:db8::1", username="alice")
        throttle.succeeded(address="2001:db8::1", username="alice")
    throttle.attempt(address="2001:db8::2", username="bob")
    throttle.attempt(address="2001:db8::3", username="carol")  # same /64: its second failure
    with pytest.raises(Exception, match="too many login attempts"):
        throttle.attempt(address="2001:db8::ffff", username="dave")
    throttle.attempt(address="2001:db8:1::1", username="dave")  # another network


async def test_concurrent_guesses_are_all_counted(app, client_from):
    await create_user(app)
    guesser = client_from("198.51.100.70")
    answers = await asyncio.gather(
        *(
            guesser.post(LOGIN, json={"username": "admin", "password": f"guess {n}"})
            for n in range(30)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(401) == LoginThrottle.FAILURES_BURST
    assert codes.count(429) == 30 - LoginThrottle.FAILURES_BURST
