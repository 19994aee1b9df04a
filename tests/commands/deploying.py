"""Helpers for the deployment tests: deploying on a selection, reading a deployment back,
retrying, and a deployment's commands by device."""

from typing import Any

import httpx

from tests.commands.helpers import Tokens


async def deploy(
    client: httpx.AsyncClient,
    tokens: Tokens,
    selection: dict[str, Any],
    packages: list[str] | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    response = await client.post(
        "/api/deployments",
        json={"selection": selection, "packages": packages},
        headers=tokens.admin,
    )
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def shown(client: httpx.AsyncClient, tokens: Tokens, deployment_id: str) -> dict[str, Any]:
    response = await client.get(
        f"/api/deployments/{deployment_id}", headers=tokens.viewer, params={"limit": 500}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def retry(
    client: httpx.AsyncClient, tokens: Tokens, deployment_id: str, expect: int = 201
) -> dict[str, Any]:
    response = await client.post(f"/api/deployments/{deployment_id}/retry", headers=tokens.admin)
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


def commands_by_device(detail: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each device's commands, oldest first (the tests move the clock between attempts)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for command in reversed(detail["commands"]["items"]):  # oldest first
        found.setdefault(command["device_id"], []).append(command)
    return found


async def audit_entries(client: httpx.AsyncClient, tokens: Tokens) -> list[dict[str, Any]]:
    response = await client.get("/api/audit", headers=tokens.admin, params={"limit": 500})
    items: list[dict[str, Any]] = response.json()["items"]
    return items
