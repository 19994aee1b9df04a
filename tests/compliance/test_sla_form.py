"""A policy's SLA from the console: an admin sets it on the policy form (and sees it again on
the policy's page); a value out of range is refused with the form and saves nothing; a
viewer cannot set it."""

import httpx
from fastapi import FastAPI

from tests.console.helpers import login, page_token
from tests.policies.helpers import console_with_a_group
from tests.support import create_user


def console_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_the_sla_on_the_policy_form(app):
    await create_user(app)
    await create_user(app, "viewer", role="viewer")
    async with console_client(app) as admin:
        token, group_id = await console_with_a_group(admin)
        form = {
            "name": "Nightly",
            "enabled": "yes",
            "always": "yes",
            "ring0_group": str(group_id),
            "csrf_token": token,
        }
        refused = await admin.post("/policies", data={**form, "sla_days": "400"})
        assert refused.status_code in (400, 422)
        assert "Overdue after (days)" in refused.text
        assert (await admin.get("/api/policies")).json() == []

        saved = await admin.post("/policies", data={**form, "sla_days": "14"})
        assert saved.status_code == 303, saved.text
        (policy,) = (await admin.get("/api/policies")).json()
        assert policy["sla_days"] == 14
        page = await admin.get(saved.headers["location"])
        assert 'name="sla_days" min="0" max="365" value="14"' in page.text
        assert "overdue once an update has waited over 14 days" in page.text
        assert "<td>14 d</td>" in (await admin.get("/policies")).text

        cleared = await admin.post(f"/policies/{policy['id']}", data={**form, "sla_days": ""})
        assert cleared.status_code == 303, cleared.text
        assert (await admin.get(f"/api/policies/{policy['id']}")).json()["sla_days"] is None

    async with console_client(app) as viewer:
        assert (await login(viewer, "viewer")).status_code == 303
        token = await page_token(viewer, "/policies")
        denied = await viewer.post(
            "/policies", data={**form, "name": "Other", "sla_days": "3", "csrf_token": token}
        )
        assert denied.status_code == 403
