"""``GET /metrics``: who may read it, and what it counts, on the real server process."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.sync.client import connect as connect_sync

from lunaris_server.app import create_app
from lunaris_server.core.settings import Environment, Settings
from lunaris_server.web.metrics import forget_dead_processes
from tests.databases import POSTGRES_URL
from tests.support import (
    BIN,
    LiveServer,
    free_port,
    register_body,
    server_env,
    ws_url,
)

pytestmark = pytest.mark.e2e

TOKEN = "metrics-token-0123456789abcdef"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def requests_counted(samples: Samples, route: str, status: str, method: str = "GET") -> float:
    count = value(
        samples,
        "lunaris_http_request_duration_seconds_count",
        method=method,
        route=route,
        status=status,
    )
    return count or 0.0


async def get_metrics(
    settings: Settings, client: tuple[str, int], **headers: str
) -> httpx.Response:
    from asgi_lifespan import LifespanManager

    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.get("/metrics", headers=headers)


LOOPBACK = ("127.0.0.1", 50000)
ELSEWHERE = ("192.0.2.7", 50000)  # only a scope value: no traffic goes anywhere


async def test_without_a_token_only_loopback_in_dev_may_read(settings):
    assert (await get_metrics(settings, LOOPBACK)).status_code == 200
    assert (await get_metrics(settings, ("::1", 50000))).status_code == 200
    assert (await get_metrics(settings, ELSEWHERE)).status_code == 404
    for env in (Environment.STAGING, Environment.PROD):
        hidden = settings.model_copy(update={"env": env})
        assert (await get_metrics(hidden, LOOPBACK)).status_code == 404


async def test_with_a_token_only_its_bearer_may_read(settings):
    guarded = settings.model_copy(update={"metrics_token": TOKEN, "env": Environment.PROD})
    missing = await get_metrics(guarded, LOOPBACK)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await get_metrics(guarded, LOOPBACK, Authorization=f"Bearer {TOKEN[:-1]}x")
    assert wrong.status_code == 401
    right = await get_metrics(guarded, ELSEWHERE, Authorization=f"Bearer {TOKEN}")
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "lunaris_devices" in right.text


async def test_requests_sockets_devices_and_commands_are_counted(live_server, seeded):
    base = live_server.base_url
    body = register_body(seeded.enrollment_secret)
    device_id = body["device_id"]
    async with httpx.AsyncClient(base_url=base, headers=seeded.auth_headers) as http:
        registered = await http.post("/api/agent/register", json=body)
        device = {"Authorization": f"Bearer {registered.json()['device_token']}"}
        for _ in range(3):  # answered by the fast path, in front of the framework
            beat = await http.post("/api/agent/heartbeat", json={}, headers=device)
            assert beat.status_code == 200
        assert (await http.get(f"/api/devices/{device_id}")).status_code == 200
        assert (await http.get(f"/api/devices/{uuid.uuid4()}")).status_code == 404
        assert (await http.get(f"/no/such/page/{device_id}")).status_code == 404

        async with (
            await connect(ws_url(base, "/ws/agent"), additional_headers=device) as agent,
            await connect(ws_url(base, "/ws/console"), additional_headers=seeded.auth_headers),
        ):
            created = await http.post(
                f"/api/devices/{device_id}/commands",
                json={"kind": "RUN_UPDATES", "packages": None},
            )
            assert created.status_code in (200, 201), created.text
            await asyncio.wait_for(agent.recv(), 5)  # pushed: the command is "sent"
            scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    samples = parse(scraped.text)

    assert requests_counted(samples, "/api/agent/heartbeat", "2xx", "POST") == 3
    assert requests_counted(samples, "/api/agent/register", "2xx", "POST") == 1
    assert requests_counted(samples, "/api/devices/{device_id}", "2xx") == 1
    assert requests_counted(samples, "/api/devices/{device_id}", "4xx") == 1
    assert requests_counted(samples, "<unmatched>", "4xx") == 1
    assert device_id not in scraped.text  # labels carry templates, never raw paths

    assert value(samples, "lunaris_agent_sockets") == 1
    assert value(samples, "lunaris_console_sockets") == 1
    assert value(samples, "lunaris_console_drops_total") == 0
    assert value(samples, "lunaris_devices", status="online") == 1
    assert value(samples, "lunaris_devices", status="offline") == 0
    assert value(samples, "lunaris_devices", status="revoked") == 0
    assert value(samples, "lunaris_commands", status="sent") == 1
    assert value(samples, "lunaris_commands", status="queued") == 0


def test_the_live_figures_of_a_dead_process_are_forgotten(tmp_path: Path):
    # A real prometheus_client process writes its figures, then dies without cleaning up.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    script = (
        "from prometheus_client import Gauge\nGauge('x', 'x', multiprocess_mode='livesum').set(1)\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)
    dead = list(tmp_path.glob("gauge_livesum_*.db"))
    assert len(dead) == 1
    alive = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    alive.write_bytes(b"")
    forget_dead_processes(tmp_path)
    assert not dead[0].exists()
    assert alive.exists()


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL")
def test_several_workers_answer_with_the_figures_of_all(database_url, tmp_path, seeded):
    port = free_port()
    env = server_env(database_url=database_url, data_dir=tmp_path / "data")
    log_path = tmp_path / "workers.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "lunaris-server"), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", env, log_path)
    try:
        deadline = time.monotonic() + 30
        while log_path.read_text().count('"server started"') < 2:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        body = register_body(seeded.enrollment_secret)
        with httpx.Client(base_url=server.base_url) as http:
            for _ in range(20):
                assert http.get("/healthz").status_code == 200
            registered = http.post("/api/agent/register", json=body)
            device = {"Authorization": f"Bearer {registered.json()['device_token']}"}
            # Whichever worker answers a scrape, it counts the requests both served.
            for _ in range(6):
                samples = parse(http.get("/metrics").text)
                assert requests_counted(samples, "/healthz", "2xx") == 20
            with connect_sync(ws_url(server.base_url, "/ws/agent"), additional_headers=device):
                # Each worker writes its socket count every few seconds; either may answer.
                deadline = time.monotonic() + 30
                while value(parse(http.get("/metrics").text), "lunaris_agent_sockets") != 1:
                    assert time.monotonic() < deadline, "the agent socket was never counted"
                    time.sleep(0.5)
    finally:
        server.stop()
    assert "Traceback" not in server.log()
