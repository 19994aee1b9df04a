"""AgentClient against the real app (in-process), a stub transport, and a closed port."""

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from lunaris_agent import __version__
from lunaris_agent.client import (
    AgentClient,
    AuthRejected,
    RequestRefused,
    ServerUnavailable,
    check_api_url,
)
from lunaris_protocol import (
    HeartbeatRequest,
    RegisterRequest,
    UpdateItem,
    UpdateReport,
    UpdateReportResponse,
)
from lunaris_server.devices.registration import REFUSED
from tests.support import create_secret, free_port

API = "http://testserver/api"


@pytest.fixture
async def agent(app: FastAPI) -> AsyncIterator[AgentClient]:
    async with AgentClient(API, transport=httpx.ASGITransport(app=app)) as client:
        yield client


def registration(secret: str) -> RegisterRequest:
    return RegisterRequest(
        device_id=uuid.uuid4(),
        hostname="LT-FIN-0042",
        os_version="Windows 11 Pro 23H2 (10.0.22631.4460)",
        agent_version=__version__,
        enrollment_secret=secret,
    )


def item(identifier: str, installed: str = "1.0", available: str = "2.0") -> UpdateItem:
    return UpdateItem(
        package_identifier=identifier,
        name=identifier,
        installed_version=installed,
        available_version=available,
        source="winget",
    )


async def test_register_heartbeat_and_reports_round_trip(app, agent):
    registered = await agent.register(registration(await create_secret(app)))
    assert (registered.heartbeat_interval_s, registered.scan_interval_s) == (60, 3600)
    token = registered.device_token

    beat = await agent.heartbeat(token, HeartbeatRequest(agent_version="0.2.0"))
    assert beat.heartbeat_interval_s == 60
    assert beat.commands == []

    first = UpdateReport(updates=[item("Mozilla.Firefox"), item("Git.Git")])
    assert await agent.report(token, first) == UpdateReportResponse(
        added=2, changed=0, removed=0, unchanged=0
    )
    second = UpdateReport(updates=[item("Mozilla.Firefox", available="3.0")])
    assert await agent.report(token, second) == UpdateReportResponse(
        added=0, changed=1, removed=1, unchanged=0
    )


async def test_unknown_secret_is_rejected_with_the_servers_message(agent):
    with pytest.raises(AuthRejected) as caught:
        await agent.register(registration("lun_enr_not-a-real-secret"))
    assert caught.value.status_code == 401
    assert caught.value.message == REFUSED


async def test_used_up_secret_is_rejected(app, agent):
    secret = await create_secret(app, max_uses=1)
    await agent.register(registration(secret))
    with pytest.raises(AuthRejected, match="secret is not valid"):
        await agent.register(registration(secret))


async def test_unknown_token_is_rejected(agent):
    with pytest.raises(AuthRejected) as caught:
        await agent.heartbeat("lun_dev_not-a-real-token", HeartbeatRequest())
    assert caught.value.message == "unknown or revoked device token"


def test_the_protocol_model_refuses_an_oversize_identifier_before_anything_is_sent():
    with pytest.raises(ValidationError, match="package_identifier"):
        item("x" * 257)


def unchecked_report(**item_fields: str) -> UpdateReport:
    """A report that skips validation, as a buggy or hostile agent's would."""
    fields = item("Mozilla.Firefox").model_dump() | item_fields
    return UpdateReport.model_construct(updates=[UpdateItem.model_construct(**fields)])


@pytest.mark.parametrize(
    "field", ["package_identifier", "name", "installed_version", "available_version", "source"]
)
async def test_the_server_refuses_what_the_model_would_have(app, agent, field):
    """The agent cannot build an oversize body (the model refuses it, above); one that was
    built anyway is refused by the server, and that is RequestRefused."""
    token = (await agent.register(registration(await create_secret(app)))).device_token
    with pytest.raises(RequestRefused) as caught:
        await agent.report(token, unchecked_report(**{field: "x" * 600}))
    assert caught.value.status_code == 422
    assert f"updates.0.{field}" in caught.value.message


async def test_a_body_over_the_size_limit_is_refused(app, agent):
    token = (await agent.register(registration(await create_secret(app)))).device_token
    huge = HeartbeatRequest.model_construct(hostname="x" * 2_000_000)
    with pytest.raises(RequestRefused) as caught:
        await agent.heartbeat(token, huge)
    assert caught.value.status_code == 413


async def test_nothing_listening_is_server_unavailable():
    async with AgentClient(f"http://127.0.0.1:{free_port()}/api", timeout_s=5) as client:
        with pytest.raises(ServerUnavailable) as caught:
            await client.heartbeat("token", HeartbeatRequest())
    assert caught.value.status_code is None
    assert "/api/agent/heartbeat" in caught.value.message


def stub(handler: Callable[[httpx.Request], httpx.Response]) -> AgentClient:
    return AgentClient("https://lunaris.example/api", transport=httpx.MockTransport(handler))


async def test_sends_json_user_agent_and_bearer_token():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"heartbeat_interval_s": 30, "scan_interval_s": 600})

    async with stub(answer) as client:
        response = await client.heartbeat("lun_dev_abc", HeartbeatRequest(hostname="PC-1"))
    assert response.heartbeat_interval_s == 30
    (request,) = seen
    assert str(request.url) == "https://lunaris.example/api/agent/heartbeat"
    assert request.headers["user-agent"] == f"lunaris-agent/{__version__}"
    assert request.headers["authorization"] == "Bearer lun_dev_abc"
    assert json.loads(request.content)["hostname"] == "PC-1"


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"code": "whatever", "message": message}}


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (httpx.Response(403, json=error_body("revoked")), AuthRejected, "revoked"),
        (httpx.Response(404, json=error_body("no such route")), RequestRefused, "no such route"),
        (httpx.Response(409, text="<html>proxy</html>"), RequestRefused, "Conflict"),
        (httpx.Response(429, json=error_body("slow down")), ServerUnavailable, "slow down"),
        (httpx.Response(502, text="Bad Gateway"), ServerUnavailable, "Bad Gateway"),
        (httpx.Response(200, text="<html>captive portal</html>"), ServerUnavailable, "unexpected"),
        (
            httpx.Response(308, headers={"location": "https://elsewhere/api/agent/heartbeat"}),
            RequestRefused,
            "redirected to https://elsewhere",
        ),
    ],
    ids=["403", "404", "409-html", "429", "502", "200-not-json", "308"],
)
async def test_answers_map_to_what_the_caller_should_do(response, error, message):
    async with stub(lambda _request: response) as client:
        with pytest.raises(error) as caught:
            await client.heartbeat("token", HeartbeatRequest())
    assert message in caught.value.message
    assert caught.value.status_code == response.status_code


async def test_a_timeout_is_server_unavailable():
    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with stub(time_out) as client:
        with pytest.raises(ServerUnavailable, match="timed out"):
            await client.heartbeat("token", HeartbeatRequest())


@pytest.mark.parametrize("url", ["localhost:8000/api", "/api", "ftp://host/api", "http://"])
def test_api_url_must_be_absolute_http(url):
    with pytest.raises(ValueError, match="https://host/api"):
        check_api_url(url)
    with pytest.raises(ValueError, match="https://host/api"):
        AgentClient(url)
