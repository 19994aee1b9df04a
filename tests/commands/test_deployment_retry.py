"""Retrying a deployment's failures: new commands in the same deployment for what did not
install, and nothing else; refused when nothing failed, or when no failed device can get a
command now; audited."""

from fastapi import FastAPI

from lunaris_server.commands.sweeper import sweep_once
from tests.commands.deploying import audit_entries, commands_by_device, deploy, retry, shown
from tests.commands.helpers import Events, enrolled, finish
from tests.support import FakeClock, app_state


async def test_a_retry_queues_only_what_failed_in_the_same_deployment(
    app: FastAPI, client, tokens, secret, clock: FakeClock, events: Events
):
    done = await enrolled(client, secret, ["Git.Git", "7zip.7zip"], hostname="PC-DONE")
    partly = await enrolled(client, secret, ["Git.Git", "7zip.7zip"], hostname="PC-PARTLY")
    failed = await enrolled(client, secret, ["Git.Git"], hostname="PC-FAILED")
    expired = await enrolled(client, secret, ["Git.Git"], hostname="PC-EXPIRED")
    devices = (done, partly, failed, expired)
    deployment_id = (await deploy(client, tokens, {"device_ids": [d.device_id for d in devices]}))[
        "deployment"
    ]["id"]
    first = {
        d: c[0]["id"]
        for d, c in commands_by_device(await shown(client, tokens, deployment_id)).items()
    }
    # Nothing has failed yet: there is nothing to retry.
    refused = await retry(client, tokens, deployment_id, expect=409)
    assert "nothing to retry" in refused["error"]["message"]

    await finish(client, done, first[done.device_id], [("Git.Git", True), ("7zip.7zip", True)])
    await finish(client, partly, first[partly.device_id], [("Git.Git", True), ("7zip.7zip", False)])
    await finish(client, failed, first[failed.device_id], [("Git.Git", False)])
    clock.advance(hours=25)
    await sweep_once(app_state(app))
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert summary["text"] == "1 of 4 succeeded, 1 partly succeeded, 1 failed, 1 expired"
    await events.drain()

    retried = await retry(client, tokens, deployment_id)
    assert (retried["created"], retried["skipped_busy"], retried["skipped_up_to_date"]) == (3, 0, 0)
    detail = await shown(client, tokens, deployment_id)
    by_device = commands_by_device(detail)
    assert len(by_device[done.device_id]) == 1  # nothing of it failed
    # What did not install, and nothing else; every update again where none of it ran.
    assert [(c["packages"], c["retry_of"]) for c in by_device[partly.device_id][1:]] == [
        (["7zip.7zip"], first[partly.device_id])
    ]
    assert [(c["packages"], c["retry_of"]) for c in by_device[failed.device_id][1:]] == [
        (["Git.Git"], first[failed.device_id])
    ]
    assert [(c["packages"], c["retry_of"]) for c in by_device[expired.device_id][1:]] == [
        (None, first[expired.device_id])
    ]
    # The retries replace what they retry in the summary; the earlier attempts stay listed.
    summary = detail["summary"]
    assert (summary["total"], summary["commands"]) == (4, 7)
    # (Silent for a day: every device is offline now.)
    assert summary["text"] == "1 of 4 succeeded, 3 waiting (offline since Nov 02 09:00 UTC)"
    assert detail["updated_at"] != detail["created_at"]
    announced = {e["data"]["deployment_id"] for e in await events.drain()}
    assert announced == {deployment_id}
    # The retries are open: a second retry finds nothing failed.
    assert (
        "nothing to retry"
        in (await retry(client, tokens, deployment_id, expect=409))["error"]["message"]
    )

    second = {d: c[-1]["id"] for d, c in by_device.items()}
    await finish(client, partly, second[partly.device_id], [("7zip.7zip", True)])
    await finish(client, failed, second[failed.device_id], [("Git.Git", False)])
    await finish(client, expired, second[expired.device_id], [("Git.Git", True)])
    summary = (await shown(client, tokens, deployment_id))["summary"]
    assert summary["text"] == "3 of 4 succeeded, 1 failed"
    # Only the device that failed again; the one retried with success is left alone.
    clock.advance(seconds=1)
    third = await retry(client, tokens, deployment_id)
    assert third["created"] == 1
    assert (
        commands_by_device(await shown(client, tokens, deployment_id))[failed.device_id][-1][
            "retry_of"
        ]
        == second[failed.device_id]
    )

    retries = [e for e in await audit_entries(client, tokens) if e["action"] == "deployment.retry"]
    assert [(e["details"]["failed"], e["details"]["commands"]) for e in retries] == [(1, 1), (3, 3)]
    assert {e["target"] for e in retries} == {f"deployment:{deployment_id}"}
    assert {e["actor"] for e in retries} == {"user:admin"}


async def test_a_retry_leaves_out_devices_that_moved_on(client, tokens, secret):
    """A failed device that has an open command for it again, or that no longer reports the
    package (updated by hand meanwhile), gets no retry: counted, and 409 when none does."""
    busy = await enrolled(client, secret, ["Git.Git"], hostname="PC-BUSY")
    fixed = await enrolled(client, secret, ["Git.Git"], hostname="PC-FIXED")
    deployment_id = (
        await deploy(client, tokens, {"device_ids": [busy.device_id, fixed.device_id]}, ["Git.Git"])
    )["deployment"]["id"]
    first = {
        d: c[0]["id"]
        for d, c in commands_by_device(await shown(client, tokens, deployment_id)).items()
    }
    for device in (busy, fixed):
        await finish(client, device, first[device.device_id], [("Git.Git", False)])
    own = await client.post(
        f"/api/devices/{busy.device_id}/commands",
        json={"kind": "RUN_UPDATES", "packages": None},
        headers=tokens.admin,
    )
    assert own.status_code == 201
    report = await client.post(
        "/api/agent/update-report", json={"updates": []}, headers=fixed.headers
    )
    assert report.status_code == 200
    refused = await retry(client, tokens, deployment_id, expect=409)
    assert refused["error"]["details"] == {
        "skipped_busy": 1,
        "skipped_up_to_date": 1,
        "skipped_revoked": 0,
    }
    assert (await shown(client, tokens, deployment_id))["summary"]["commands"] == 2
