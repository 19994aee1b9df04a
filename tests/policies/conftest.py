"""Fixtures of the policy tests (helpers: tests/policies/helpers.py)."""

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from tests.support import FakeClock, api_login, create_user


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient, clock: FakeClock) -> httpx.AsyncClient:
    clock.now = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)  # Monday, 21:00 in Berlin
    await create_user(app)
    await api_login(client)
    return client
