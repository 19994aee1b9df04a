"""Typed async client for the agent's REST API under ``{api_url}/agent``.

A failed call raises one of three errors, one per thing the caller can do about it:
re-register (:class:`AuthRejected`), drop the body (:class:`RequestRefused`), or try again
later (:class:`ServerUnavailable`).
"""

import email.utils
import ssl
from datetime import UTC, datetime
from typing import Self, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from lunaris_agent import __version__
from lunaris_protocol import (
    CommandProgress,
    CommandProgressResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    InventoryReport,
    InventoryReportResponse,
    RegisterRequest,
    RegisterResponse,
    UpdateReport,
    UpdateReportResponse,
)

USER_AGENT = f"lunaris-agent/{__version__}"

AnswerT = TypeVar("AnswerT", bound=BaseModel)


class AgentApiError(Exception):
    """A call to the server failed; ``message`` is the server's own words when it gave any."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message if status_code is None else f"HTTP {status_code}: {message}")
        self.message = message
        self.status_code = status_code


class AuthRejected(AgentApiError):
    """401/403: the enrollment secret or the device token is not, or no longer, accepted."""


class RequestRefused(AgentApiError):
    """The server refused what we sent (any other 4xx, or a redirect): resending cannot help."""


class ServerUnavailable(AgentApiError):
    """Unreachable, too slow, busy (429) or failing (5xx): try again later, after
    ``retry_after_s`` when the server said how long."""

    def __init__(
        self, message: str, status_code: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, status_code)
        self.retry_after_s = retry_after_s


class ReenrollmentPending(ServerUnavailable):
    """409: this device id is enrolled already and the server holds the registration for an
    admin's approval; ask again later with the same registration key."""


def check_api_url(api_url: str) -> str:
    """``api_url`` when it is an absolute http(s) URL, else a ValueError that says so."""
    url = httpx.URL(api_url)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"the API URL must look like https://host/api, not {api_url!r}")
    return api_url


class AgentClient:
    """One connection pool to the server; device tokens are per call, so simulated devices
    can share a client."""

    def __init__(
        self,
        api_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: bool | str = True,
        timeout_s: float = 30.0,
    ) -> None:
        """``verify`` is a CA bundle file when it is a string."""
        self._http = httpx.AsyncClient(
            base_url=check_api_url(api_url),
            transport=transport,
            verify=ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify,
            timeout=timeout_s,
            headers={"User-Agent": USER_AGENT},
        )

    async def register(self, request: RegisterRequest) -> RegisterResponse:
        return await self._post("agent/register", request, RegisterResponse)

    async def heartbeat(self, token: str, request: HeartbeatRequest) -> HeartbeatResponse:
        return await self._post("agent/heartbeat", request, HeartbeatResponse, token)

    async def report(self, token: str, report: UpdateReport) -> UpdateReportResponse:
        return await self._post("agent/update-report", report, UpdateReportResponse, token)

    async def inventory(self, token: str, report: InventoryReport) -> InventoryReportResponse:
        """What is installed: the digest alone, or with the list when the server asked for it
        (``full_list_needed``)."""
        return await self._post("agent/inventory", report, InventoryReportResponse, token)

    async def command_progress(
        self, token: str, command_id: UUID, progress: CommandProgress
    ) -> CommandProgressResponse:
        return await self._post(
            f"agent/commands/{command_id}/progress", progress, CommandProgressResponse, token
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.aclose()

    async def _post(
        self, path: str, body: BaseModel, answer: type[AnswerT], token: str | None = None
    ) -> AnswerT:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else None
        try:
            response = await self._http.post(
                path, json=body.model_dump(mode="json"), headers=headers
            )
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise ServerUnavailable(f"{self._http.base_url}{path}: {reason}") from error
        if not response.is_success:
            raise _error_for(response)
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as error:
            # Something that is not our server (a proxy's page, say) answered: it may pass.
            raise ServerUnavailable(
                f"unexpected answer from {response.url}", response.status_code
            ) from error


def _error_for(response: httpx.Response) -> AgentApiError:
    status = response.status_code
    if response.is_redirect:
        # Never re-sent elsewhere: the configured API URL is wrong and should be fixed.
        location = response.headers.get("location", "?")
        return RequestRefused(f"redirected to {location}; configure that API URL", status)
    message = _server_message(response)
    if status == 409 and _server_code(response) == "reenrollment_pending":
        return ReenrollmentPending(message, status, retry_after(response))
    if status in (401, 403):
        return AuthRejected(message, status)
    if status == 429 or status >= 500:
        return ServerUnavailable(message, status, retry_after(response))
    return RequestRefused(message, status)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, given as seconds or as an HTTP date; None when absent or
    unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _server_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _server_message(response: httpx.Response) -> str:
    """The message of an ``{"error": {"message": ...}}`` body, else the status line."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or "no message"
