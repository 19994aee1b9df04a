"""Fixtures of the server tests: clients that reach the app from a given address (helpers:
tests/server/helpers.py)."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI


@pytest.fixture
async def client_from(app: FastAPI) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """HTTP clients that reach the app from a given address."""
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
