"""Helpers for the console tests: logging in through the form, reading CSRF tokens, users
added to a database a server process uses, agents reporting through the real agent API."""

import re
from dataclasses import dataclass
from typing import Any

import httpx

from lunaris_agent.simulate.inventory import Inventory
from lunaris_server.accounts import service as accounts
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.core.clock import utc_now
from lunaris_server.db import Database
from tests.support import register_body

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


async def login(
    http: httpx.AsyncClient, username: str = "admin", password: str = "correct horse"
) -> httpx.Response:
    page = await http.get("/login")
    return await http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(page.text)},
    )


async def page_token(http: httpx.AsyncClient, path: str = "/settings/tokens") -> str:
    """A CSRF token for this client's session, read from a page as a browser would."""
    return csrf_token((await http.get(path)).text)


async def add_user_to(database_url: str, username: str, password: str, role: str) -> None:
    database = Database(database_url)
    try:
        async with database.session() as session:
            await accounts.add_user(
                session,
                username=username,
                password=password,
                role=role,
                now=utc_now(),
                actor=CLI_ACTOR,
            )
            await session.commit()
    finally:
        await database.dispose()


@dataclass
class Agent:
    """A device speaking the agent API, reporting what a realistic simulated PC reports."""

    base_url: str
    secret: str
    hostname: str
    os_version: str = "Windows 11 Pro 23H2 (10.0.22631)"
    agent_version: str = "0.1.0"
    token: str = ""

    def __post_init__(self) -> None:
        self.body = register_body(
            self.secret,
            hostname=self.hostname,
            os_version=self.os_version,
            agent_version=self.agent_version,
        )
        self.device_id: str = self.body["device_id"]
        self.inventory = Inventory(self.device_id)  # type: ignore[arg-type]

    async def register(self) -> None:
        """With the current token as proof, when it has one (as the real agent sends it)."""
        body = {**self.body, "device_token": self.token or None}
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            response = await http.post("/api/agent/register", json=body)
        assert response.status_code == 200, response.text
        self.token = response.json()["device_token"]

    async def report(self, report: dict[str, Any] | None = None) -> None:
        if report is None:
            report = self.inventory.scan().model_dump(mode="json")
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            response = await http.post(
                "/api/agent/update-report",
                json=report,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        assert response.status_code == 200, response.text
