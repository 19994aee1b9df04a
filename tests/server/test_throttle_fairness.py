"""Rate limits that stop guessing without stopping the people they protect: an office behind
one address, an admin whose name is being guessed elsewhere, a rollout through one NAT."""

import httpx
import pytest

from lunaris_server.web.throttle import RegistrationThrottle
from tests.server.helpers import Ticks
from tests.support import create_secret, create_user, register_body

pytestmark = pytest.mark.e2e

LOGIN = "/api/auth/login"
REGISTER = "/api/agent/register"


async def test_an_office_behind_one_address_logs_in_together(app, client_from):
    office = client_from("203.0.113.10")
    names = [f"user{n:02d}" for n in range(40)]
    for name in names:
        await create_user(app, name, "right password", role="viewer")
    for _ in range(5):  # one person mistypes
        wrong = await office.post(LOGIN, json={"username": "user00", "password": "typo typo"})
        assert wrong.status_code == 401
    answers = [
        (await office.post(LOGIN, json={"username": n, "password": "right password"})).status_code
        for n in names[1:]
    ]
    assert answers == [200] * len(names[1:])


async def test_guessing_the_admin_elsewhere_does_not_lock_the_admin_out(app, client_from):
    await create_user(app)
    desk = client_from("192.0.2.1")
    right = {"username": "admin", "password": "correct horse"}
    assert (await desk.post(LOGIN, json=right)).status_code == 200
    for n in range(60):  # a botnet: one guess from each of many addresses
        guess = await client_from(f"198.51.{n // 250}.{n % 250 + 1}").post(
            LOGIN, json={"username": "admin", "password": f"guess {n}"}
        )
        assert guess.status_code in (401, 429)
    assert (await desk.post(LOGIN, json=right)).status_code == 200


def test_a_rollout_of_5000_pcs_through_one_nat_all_registers():
    ticks = Ticks()
    throttle = RegistrationThrottle(per_secret_per_minute=600, clock=ticks)
    for n in range(5000):  # a software push: most PCs ask in the first minute
        ticks.now = n * 0.012
        throttle.attempt(address="203.0.113.50", secret="the rollout's secret")
        throttle.succeeded(address="203.0.113.50")  # the secret was valid


async def test_a_burst_of_registrations_from_one_address_all_pass(app, client_from):
    secret = await create_secret(app)
    nat = client_from("203.0.113.51")
    answers = [
        (await nat.post(REGISTER, json=register_body(secret))).status_code for _ in range(700)
    ]
    assert set(answers) == {200}


@pytest.mark.parametrize("behind_proxy", [False, True])
def test_forwarded_addresses_count_only_from_the_configured_proxy(start_server, behind_proxy):
    """A client cannot pick a fresh bucket by sending its own X-Forwarded-For; the proxy
    named in LUNARIS_FORWARDED_ALLOW_IPS can tell each client apart."""
    extra = {"LUNARIS_LOGIN_FAILURES_PER_MINUTE": "5"}
    if behind_proxy:
        extra["LUNARIS_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    server = start_server(**extra)
    answers = [
        httpx.post(
            f"{server.base_url}{LOGIN}",
            json={"username": f"nobody{n}", "password": "wrong password"},
            headers={"X-Forwarded-For": f"198.51.100.{n + 1}"},
        ).status_code
        for n in range(6)
    ]
    assert answers == [401] * 6 if behind_proxy else [401] * 5 + [429]
