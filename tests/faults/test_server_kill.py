"""The server process killed (SIGKILL: no shutdown, no goodbye to the sockets) while a
simulated fleet heartbeats and reports, then started again on the same address: the agents
keep what they scan meanwhile, reconnect their push sockets, heartbeat on, and every report
arrives. On the test database (SQLite, or PostgreSQL when configured)."""

import asyncio
from datetime import UTC, datetime

import pytest

from tests.faults.fleet import (
    agent_sockets,
    every_device_reported,
    finals_spooled,
    finals_stored,
    heartbeats_since,
    report_keys,
)
from tests.support import seed_database

pytestmark = pytest.mark.e2e

DEVICES = 100


async def test_a_killed_server_restarted_on_its_port_loses_no_report(database_url, servers, fleets):
    seeded = await seed_database(database_url)
    server = await asyncio.to_thread(servers, database_url, LUNARIS_HEARTBEAT_INTERVAL_S="2")
    port = int(server.base_url.rsplit(":", 1)[1])
    fleet = fleets(
        api_url=f"{server.base_url}/api",
        enrollment_secret=seeded.enrollment_secret,
        count=DEVICES,
        heartbeat_interval_s=1.0,
        scan_interval_s=3.0,
    )
    before = await every_device_reported(database_url, DEVICES)

    first_process = await agent_sockets(server.base_url, seeded.api_token, DEVICES)

    server.process.kill()
    await asyncio.to_thread(server.process.wait)
    fleet.recorder.settle()
    finals = await finals_spooled(fleet, DEVICES)
    changed = sum(report_keys(finals[d]) != before[d].updates for d in finals)
    assert changed > DEVICES // 2  # the reports to come are news to the server

    back = await asyncio.to_thread(
        servers, database_url, port=port, LUNARIS_HEARTBEAT_INTERVAL_S="2"
    )
    back_at = datetime.now(UTC)
    await finals_stored(database_url, finals)
    await heartbeats_since(database_url, back_at, DEVICES)
    # Every agent's push socket is open again, on the new process.
    assert await agent_sockets(back.base_url, seeded.api_token, DEVICES) != first_process
    assert not fleet.task.done()
