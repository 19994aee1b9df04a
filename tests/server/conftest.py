"""Helpers for the server tests: a settable monotonic clock for the rate limiters, and
clients that reach the app from a given address."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI


class Ticks:
    """A monotonic clock the test sets."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


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
