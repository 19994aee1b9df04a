"""Fixtures of the console tests (their helpers: tests/console/helpers.py)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.console.helpers import login
from tests.support import create_user


@pytest.fixture
async def browser_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second client on the same app, with its own cookies (another browser)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The client, logged in as an admin (files with their own ``admin`` use theirs)."""
    await create_user(app)
    assert (await login(client)).status_code == 303
    return client


@pytest.fixture
async def viewer(app: FastAPI, browser_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second client, logged in as the viewer vera."""
    await create_user(app, "vera", "viewer password", role="viewer")
    assert (await login(browser_client, "vera", "viewer password")).status_code == 303
    return browser_client
