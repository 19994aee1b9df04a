from tests.support import create_secret, register_device


async def test_register_and_heartbeat(app, client):
    secret = await create_secret(app)
    device = await register_device(client, secret)
    response = await client.post("/api/agent/heartbeat", json={}, headers=device.headers)
    assert response.status_code == 200, response.text
    assert response.json()["heartbeat_interval_s"] == 60
