"""PostgreSQL stopped and started again while a fleet of 200 simulated agents heartbeats and
reports: the server process rides it out, and every report made meanwhile arrives.

The database is this test's own (``initdb`` in a temporary directory), never the one other
tests share.
"""

import asyncio
from datetime import UTC, datetime

import httpx
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

DEVICES = 200


async def test_a_postgresql_restart_under_load_loses_no_report(private_postgres, servers, fleets):
    database_url = private_postgres.url
    seeded = await seed_database(database_url)
    server = await asyncio.to_thread(servers, database_url, LUNARIS_HEARTBEAT_INTERVAL_S="2")
    fleet = fleets(
        api_url=f"{server.base_url}/api",
        enrollment_secret=seeded.enrollment_secret,
        count=DEVICES,
        heartbeat_interval_s=1.0,
        scan_interval_s=3.0,
        concurrency=40,
    )
    before = await every_device_reported(database_url, DEVICES)
    process_id = await agent_sockets(server.base_url, seeded.api_token, DEVICES)

    await asyncio.to_thread(private_postgres.stop)
    fleet.recorder.settle()
    # Each PC scans during the outage and keeps the report on disk, since the server cannot
    # store it; heartbeats meanwhile are answered from the server's device cache.
    finals = await finals_spooled(fleet, DEVICES)
    changed = sum(report_keys(finals[d]) != before[d].updates for d in finals)
    assert changed > DEVICES // 2  # the reports to come are news to the server
    assert server.process.poll() is None

    await asyncio.to_thread(private_postgres.start)
    back_at = datetime.now(UTC)

    await finals_stored(database_url, finals)
    await heartbeats_since(database_url, back_at, DEVICES)
    assert server.process.poll() is None  # recovered on its own, not restarted
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/readyz")).status_code == 200
    # The same process holds every agent's push socket.
    assert await agent_sockets(server.base_url, seeded.api_token, DEVICES) == process_id
    assert not fleet.task.done()
