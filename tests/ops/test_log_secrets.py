"""No secret reaches the logs, even at debug level: enrollment secrets, passwords, API and
device tokens, session cookies. Driven through the real server process."""

import json

import httpx
import pytest
from websockets.sync.client import connect

from tests.support import register_body, start_live_server, ws_url

pytestmark = pytest.mark.e2e


def test_debug_logs_name_requests_and_devices_but_no_secret(database_url, tmp_path, seeded):
    server = start_live_server(
        database_url=database_url, data_dir=tmp_path / "server", LUNARIS_LOG_LEVEL="DEBUG"
    )
    wrong_password = "not-the-password-42"
    body = register_body(seeded.enrollment_secret)
    device_id = body["device_id"]
    try:
        with httpx.Client(base_url=server.base_url) as http:
            registered = http.post(
                "/api/agent/register", json=body, headers={"X-Request-ID": "req-register"}
            )
            assert registered.status_code == 200
            device_token = registered.json()["device_token"]
            device = {"Authorization": f"Bearer {device_token}"}
            # The fast path, then the framework's route (a body the fast path hands on).
            assert http.post("/api/agent/heartbeat", json={}, headers=device).status_code == 200
            slow = http.post("/api/agent/heartbeat", content=b"[]", headers=device)
            assert slow.status_code == 422
            report = {"updates": []}
            assert http.post("/api/agent/update-report", json=report, headers=device).is_success

            refused = http.post(
                "/api/auth/login", json={"username": seeded.username, "password": wrong_password}
            )
            assert refused.status_code == 401
            login = http.post(
                "/api/auth/login",
                json={"username": seeded.username, "password": seeded.password},
                headers={"X-Request-ID": "req-login"},
            )
            assert login.status_code == 200
            session_cookie = login.cookies["lunaris_session"]
            assert http.get("/devices", headers={"Accept": "text/html"}).status_code == 200
            listed = http.get(
                "/api/devices", headers={**seeded.auth_headers, "X-Request-ID": "req-token"}
            )
            assert listed.status_code == 200

        with connect(ws_url(server.base_url, "/ws/agent"), additional_headers=device):
            pass
        cookie = {"Cookie": f"lunaris_session={session_cookie}"}
        with connect(ws_url(server.base_url, "/ws/console"), additional_headers=cookie):
            pass
    finally:
        server.stop()

    log = server.log()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(r.get("level") == "debug" for r in records)  # debug lines were written
    request_ids = {r.get("request_id") for r in records}
    assert {"req-register", "req-login", "req-token"} <= request_ids
    assert device_id in log

    secrets = {
        "enrollment secret": seeded.enrollment_secret,
        "password": seeded.password,
        "refused password": wrong_password,
        "API token": seeded.api_token,
        "device token": device_token,
        "session cookie": session_cookie,
    }
    for what, secret in secrets.items():
        # The random part alone too: a token logged without its prefix is still leaked.
        for part in {secret, secret.split("_", 1)[-1]}:
            assert part not in log, f"the {what} appears in the log"
