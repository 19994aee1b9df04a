"""The agent's push channel: a WebSocket to ``/ws/agent`` on which the server sends commands
the moment an admin creates them.

Delivery never depends on it: a command also rides on the next heartbeat answer, and the
runner ignores an id it has seen. So this loop only has to be cheap and persistent: connect
with the device token, hand each RUN_UPDATES to the runner, reconnect with back-off when the
connection drops. Authentication problems are the heartbeat loop's to handle (it registers
again or stops the agent); here they only mean "try later".
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable
from typing import Final

import httpx
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from lunaris_agent.client import USER_AGENT
from lunaris_protocol import AgentCommand, agent_message_adapter
from lunaris_protocol.backoff import Backoff

log = logging.getLogger(__name__)

PING_INTERVAL_S: Final = 45.0
"""Keeps NAT and proxy state alive and notices a dead server; rarer than websockets' 20 s
default, since a fleet of 50,000 agents pings the server at this rate."""
RECONNECT_CAP_S: Final = 300.0


def socket_url(api_url: str) -> str:
    """``https://host/prefix/api`` -> ``wss://host/prefix/ws/agent``."""
    url = httpx.URL(api_url)
    path = url.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    scheme = "wss" if url.scheme == "https" else "ws"
    return str(url.copy_with(scheme=scheme, path=f"{path}/ws/agent", query=None))


class PushChannel:
    def __init__(
        self,
        api_url: str,
        *,
        token: Callable[[], str | None],
        on_command: Callable[[AgentCommand], object],
        verify: bool | str = True,
        rng: random.Random | None = None,
    ) -> None:
        """``token`` is read at each connection attempt: registration may replace it."""
        self.url = socket_url(api_url)
        self._token = token
        self._on_command = on_command
        self._ssl = _ssl_context(verify) if self.url.startswith("wss:") else None
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.connected = asyncio.Event()
        self._open: ClientConnection | None = None

    async def reconnect(self) -> None:
        """Closes the open connection, if any: the next one is made with the token of now."""
        if self._open is not None:
            await self._open.close()

    async def run_forever(self) -> None:
        backoff = Backoff(RECONNECT_CAP_S, self._rng)
        while True:
            token = self._token()
            if token is not None:
                try:
                    await self._listen(token)
                except (OSError, TimeoutError, WebSocketException) as error:
                    log.debug("push channel unavailable: %s", error)
                finally:
                    if self.connected.is_set():
                        # It was up (however it ended, a server killed mid-way included):
                        # the next attempt starts the back-off afresh.
                        backoff.reset()
                    self.connected.clear()
            await asyncio.sleep(backoff.next_delay())

    async def _listen(self, token: str) -> None:
        async with connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {token}"},
            user_agent_header=USER_AGENT,
            ssl=self._ssl,
            ping_interval=PING_INTERVAL_S,
            ping_timeout=30,
            open_timeout=30,
        ) as websocket:
            self._open = websocket
            self.connected.set()
            log.debug("push channel open: %s", self.url)
            try:
                async for text in websocket:
                    self._receive(text)
            finally:
                self._open = None

    def _receive(self, text: str | bytes) -> None:
        try:
            message = agent_message_adapter.validate_json(text)
        except ValidationError:
            log.warning("push channel: ignoring a message this agent does not understand")
            return
        self._on_command(message.data)


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
