"""The device token: registering with the enrollment secret when there is none, and again when
the server refuses the one there is.

Registering a known device id sends its current token as proof, and a registration key that
an admin's approval admits while the server holds the registration for one. The secret is
removed from ``config.json`` once it has done its job. A refused secret, or a refused token
with no secret to register anew, stops the agent with a message saying what to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from lunaris_agent.client import AgentClient, AuthRejected, ReenrollmentPending, RequestRefused
from lunaris_agent.config import AgentConfig
from lunaris_agent.identity import DeviceFacts, local_time_zone, new_registration_key
from lunaris_agent.runtime.contact import ContactRecorder
from lunaris_agent.runtime.exits import AgentStopped
from lunaris_protocol import RegisterRequest

log = logging.getLogger(__name__)

T = TypeVar("T")


class Registration:
    """Makes calls with the device token, registering first when there is none and again when
    the server refuses it. The loops share one: only one of them registers at a time."""

    def __init__(
        self,
        client: AgentClient,
        facts: DeviceFacts,
        contact: ContactRecorder,
        *,
        config: Callable[[], AgentConfig],
        save_config: Callable[[AgentConfig], None],
        capabilities: Callable[[], list[str]],
    ) -> None:
        """``config`` is the agent's config as it is now; ``save_config`` writes a change;
        ``capabilities`` is what the agent says it understands."""
        self._client = client
        self._facts = facts
        self._contact = contact
        self._config = config
        self._save_config = save_config
        self._capabilities = capabilities
        self._registering = asyncio.Lock()

    async def authorized(self, call: Callable[[str], Awaitable[T]]) -> T:
        """``call(token)``, registered first when needed and once more if the token is refused."""
        token = self._config().device_token or await self._register(stale_token=None)
        try:
            return await call(token)
        except AuthRejected as error:
            token = await self._register(stale_token=token, rejected=error)
            return await call(token)

    async def _register(
        self, *, stale_token: str | None, rejected: AuthRejected | None = None
    ) -> str:
        async with self._registering:
            config = self._config()
            if config.device_token is not None and config.device_token != stale_token:
                return config.device_token  # the other loop registered while this one waited
            secret = config.enrollment_secret
            if secret is None:
                if rejected is None:
                    raise AgentStopped(
                        f"{config.path} has neither a device token nor an enrollment "
                        "secret: run `lunaris-agent configure --enrollment-secret SECRET`"
                    )
                raise AgentStopped(
                    f"the server no longer accepts this device's token ({rejected}): the "
                    "device was revoked or removed. To enroll it again, run `lunaris-agent "
                    "configure --enrollment-secret SECRET` and restart the agent."
                )
            if rejected is not None:
                log.warning("the server refused the device token (%s); registering again", rejected)
            if config.registration_key is None:
                self._save_config(replace(config, registration_key=new_registration_key()))
                config = self._config()
            assert config.device_id is not None  # the Agent is made with one
            request = RegisterRequest(
                device_id=config.device_id,
                hostname=self._facts.hostname,
                os_version=self._facts.os_version,
                agent_version=self._facts.agent_version,
                enrollment_secret=secret,
                device_token=config.device_token,  # proof that this id is ours
                registration_key=config.registration_key,
                tags=list(config.tags),  # none clears the device's agent tags
                capabilities=self._capabilities(),
                time_zone=local_time_zone(),
                booted_at=self._facts.booted_at,
                **self._facts.wire(),
            )
            try:
                response = await self._client.register(request)
            except ReenrollmentPending as waiting:
                log.warning("registration waits for an admin's approval: %s", waiting.message)
                raise  # as the server being unavailable: the loops ask again later
            except (AuthRejected, RequestRefused) as error:
                # The token (if any) stays in the config: the refusal changes nothing here.
                stopped = AgentStopped(
                    f"the server refused to register this device ({error.message}). If the "
                    "enrollment secret is wrong, expired or used up, run `lunaris-agent "
                    "configure --enrollment-secret SECRET`; otherwise ask an admin."
                )
                self._contact.failed(str(stopped))  # why the agent stopped, for `status`
                raise stopped from error
            # The secret has done its job: it must not stay readable on the PC.
            self._save_config(
                replace(
                    self._config(),
                    device_token=response.device_token,
                    enrollment_secret=None,
                    registration_key=None,
                    heartbeat_interval_s=response.heartbeat_interval_s,
                    scan_interval_s=response.scan_interval_s,
                    inventory_interval_s=response.inventory_interval_s,
                )
            )
            registered = self._config()
            log.info("registered with %s as device %s", registered.api_url, registered.device_id)
            return response.device_token
