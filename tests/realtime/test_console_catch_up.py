"""A console page is rendered before its live socket opens: what changes in between reaches
it when the socket opens, from real server processes over real WebSockets."""

import re

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.databases import POSTGRES_URL
from tests.realtime.test_console_events import Agent, assert_silent, next_event
from tests.support import LiveServer, Seeded, api_login, ws_url

pytestmark = pytest.mark.e2e


async def rendered_page(server: LiveServer, seeded: Seeded) -> tuple[str, str]:
    """The devices page's ``data-live-since``, and the session cookie it was shown to."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await api_login(http, seeded.username, seeded.password)
        page = await http.get("/devices")
        assert page.status_code == 200, page.text
        cookie = f"lunaris_session={http.cookies['lunaris_session']}"
    since = re.search(r'<body data-live-since="(\d+)"', page.text)
    assert since is not None, page.text[:500]
    return since.group(1), cookie


def socket_url(server: LiveServer, query: str = "") -> str:
    return ws_url(server.base_url, "/ws/console") + query


async def test_a_change_between_the_page_and_its_socket_arrives_when_it_opens(start_server, seeded):
    server = start_server()
    since, cookie = await rendered_page(server, seeded)
    agent = Agent(server, seeded.enrollment_secret)
    await agent.register()  # after the page, before its socket
    headers = {"Cookie": cookie, "Origin": server.base_url}
    async with await connect(
        socket_url(server, f"?since={since}"), additional_headers=headers
    ) as ws:
        missed = await next_event(ws)
        assert missed["type"] == "DEVICE_STATUS_UPDATE"
        assert missed["data"]["device_id"] == agent.device_id
        await assert_silent(ws)
    # A socket without a page time (a script), or from a later page, gets only what follows.
    later, _ = await rendered_page(server, seeded)
    for query in ("", f"?since={int(later) + 5_000}"):
        async with await connect(socket_url(server, query), additional_headers=headers) as ws:
            await assert_silent(ws)


@pytest.mark.skipif(not POSTGRES_URL, reason="replicas share events through PostgreSQL")
async def test_a_page_from_one_replica_catches_up_on_another(start_server, seeded):
    a, b = start_server(), start_server()
    since, cookie = await rendered_page(a, seeded)
    agent = Agent(a, seeded.enrollment_secret)
    await agent.register()  # through A, before the socket opens on B
    headers = {"Cookie": cookie, "Origin": b.base_url}
    async with await connect(socket_url(b, f"?since={since}"), additional_headers=headers) as ws:
        assert (await next_event(ws))["data"]["device_id"] == agent.device_id


async def test_a_bad_query_is_refused_with_a_reason(start_server, seeded):
    server = start_server()
    for query in (
        "?since=soon",
        "?since=-5",
        "?since=1&since=2",
        "?since=1&x=1",
        "?x=1",
        "?since=",
    ):
        with pytest.raises(InvalidStatus) as refused:
            await connect(socket_url(server, query), additional_headers=seeded.auth_headers)
        assert refused.value.response.status_code == 400, query
        assert b"since=<epoch milliseconds>" in refused.value.response.body
