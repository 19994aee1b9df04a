"""Fixtures of the console tests (their helpers: tests/console/helpers.py)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI


@pytest.fixture
async def browser_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second client on the same app, with its own cookies (another browser)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
