"""The wire contract: golden payloads round-trip unchanged, and every bound is enforced."""

import json
from pathlib import Path

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from lunaris_protocol import (
    CommandProgress,
    CommandProgressResponse,
    CommandStatus,
    HeartbeatRequest,
    HeartbeatResponse,
    InstalledItem,
    InventoryReport,
    InventoryReportResponse,
    RegisterRequest,
    RegisterResponse,
    RunUpdatesCommand,
    RunUpdatesMessage,
    UpdateAgentCommand,
    UpdateAgentMessage,
    UpdateItem,
    UpdateReport,
    UpdateReportResponse,
    agent_message_adapter,
    console_event_adapter,
    list_digest,
)
from lunaris_protocol.events import (
    CommandUpdated,
    DeviceSoftwareChanged,
    DeviceStatusUpdate,
    DeviceUpdatesChanged,
    PolicyUpdated,
)

GOLDEN = Path(__file__).parent / "golden"

CASES: dict[str, type[BaseModel]] = {
    "register_request.json": RegisterRequest,
    "register_request_again.json": RegisterRequest,
    "register_response.json": RegisterResponse,
    "heartbeat_request.json": HeartbeatRequest,
    "heartbeat_response.json": HeartbeatResponse,
    "heartbeat_response_new_identity.json": HeartbeatResponse,
    "update_report.json": UpdateReport,
    "update_report_scan_error.json": UpdateReport,
    "update_report_response.json": UpdateReportResponse,
    "inventory_report.json": InventoryReport,
    "inventory_report_digest_only.json": InventoryReport,
    "inventory_report_response.json": InventoryReportResponse,
    "event_device_status_update.json": DeviceStatusUpdate,
    "event_device_updates_changed.json": DeviceUpdatesChanged,
    "event_device_software_changed.json": DeviceSoftwareChanged,
    "event_command_updated.json": CommandUpdated,
    "event_command_updated_partial.json": CommandUpdated,
    "event_policy_updated.json": PolicyUpdated,
    "agent_run_updates.json": RunUpdatesMessage,
    "agent_update_agent.json": UpdateAgentMessage,
    "heartbeat_response_update_agent.json": HeartbeatResponse,
    "command_progress_started.json": CommandProgress,
    "command_progress_result.json": CommandProgress,
    "command_progress_response.json": CommandProgressResponse,
}


def normalise(value: object) -> object:
    """JSON-equal, with timestamps compared as instants (``Z`` and ``+00:00`` agree)."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and value.endswith("Z") and "T" in value:
        return value[:-1] + "+00:00"
    return value


def test_every_golden_file_has_a_case():
    assert {p.name for p in GOLDEN.glob("*.json")} == set(CASES)


@pytest.mark.parametrize(("name", "model"), CASES.items())
def test_golden_round_trip(name: str, model: type[BaseModel]):
    raw = (GOLDEN / name).read_text(encoding="utf-8")
    parsed = model.model_validate_json(raw)
    dumped = json.loads(parsed.model_dump_json())
    assert normalise(dumped) == normalise(json.loads(raw))
    assert model.model_validate(dumped) == parsed


@pytest.mark.parametrize(
    "name",
    [
        "event_device_status_update.json",
        "event_device_updates_changed.json",
        "event_device_software_changed.json",
        "event_command_updated.json",
        "event_command_updated_partial.json",
        "event_policy_updated.json",
    ],
)
def test_console_events_dispatch_on_type(name: str):
    event = console_event_adapter.validate_json((GOLDEN / name).read_text(encoding="utf-8"))
    assert event.type == json.loads((GOLDEN / name).read_text())["type"]
    assert type(event) is CASES[name]


def test_empty_heartbeat_and_report_are_valid():
    assert HeartbeatRequest.model_validate({}) == HeartbeatRequest()
    assert UpdateReport.model_validate({}).updates == []


def test_update_flags_default_to_false():
    item = UpdateItem.model_validate(
        {
            "package_identifier": "Git.Git",
            "name": "Git",
            "installed_version": "1",
            "available_version": "2",
        }
    )
    assert (item.explicit_targeting, item.truncated, item.source) == (False, False, None)


def row(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "package_identifier": "Git.Git",
        "name": "Git",
        "installed_version": "1",
        "available_version": "2",
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "bad",
    [
        {"updates": [row(package_identifier="x" * 257)]},
        {"updates": [row(package_identifier="")]},
        {"updates": [row(name="n" * 513)]},
        {"updates": [row(installed_version="1" * 129)]},
        {"updates": [row(source="s" * 65)]},
        {"updates": [row()] * 5001},
        {"updates": [row(unexpected=True)]},
        {"updates": [], "scan_error": {"code": "c" * 65, "message": "m"}},
        {"updates": [], "scan_error": {"code": None, "message": "m" * 4001}},
        {"updates": [], "extra": 1},
    ],
)
def test_report_bounds_are_enforced(bad: dict[str, object]):
    with pytest.raises(ValidationError):
        UpdateReport.model_validate(bad)


def test_report_at_the_bounds_is_accepted():
    report = UpdateReport.model_validate(
        {"updates": [row(package_identifier="x" * 256, name="n" * 512)] * 5000}
    )
    assert len(report.updates) == 5000


@pytest.mark.parametrize(
    "bad",
    [
        {"device_id": "nope"},
        {"hostname": ""},
        {"hostname": "h" * 256},
        {"enrollment_secret": ""},
        {"enrollment_secret": "s" * 257},
    ],
)
def test_register_bounds_are_enforced(bad: dict[str, object]):
    body = json.loads((GOLDEN / "register_request.json").read_text())
    body.update(bad)
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate(body)


def test_command_packages_are_bounded_and_null_means_all():
    base = {
        "command_id": "5d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
        "expires_at": "2026-11-28T09:00:00Z",
    }
    assert RunUpdatesCommand.model_validate({**base, "packages": None}).packages is None
    for bad in ([], ["x" * 257], ["a"] * 1001):
        with pytest.raises(ValidationError):
            RunUpdatesCommand.model_validate({**base, "packages": bad})
    with pytest.raises(ValidationError):
        TypeAdapter(RunUpdatesCommand).validate_python({**base, "kind": "REBOOT"})


def test_replies_ignore_unknown_fields_and_requests_refuse_them():
    """A newer server may add reply fields without breaking deployed agents; a request with
    an unknown field is a client bug and is refused."""
    reply = json.loads((GOLDEN / "heartbeat_response.json").read_text())
    reply["added_in_a_later_version"] = {"x": 1}
    assert HeartbeatResponse.model_validate(reply).heartbeat_interval_s == 60
    request = json.loads((GOLDEN / "heartbeat_request.json").read_text())
    request["added_in_a_later_version"] = 1
    with pytest.raises(ValidationError):
        HeartbeatRequest.model_validate(request)


def test_command_progress_is_bounded_and_strict():
    result = {"package_identifier": "A.B", "outcome": "success", "succeeded": True}
    CommandProgress.model_validate({"sequence": 3, "status": "succeeded", "result": result})
    for bad in (
        {"sequence": 0, "status": "running"},
        {"sequence": 1, "status": "queued"},  # only the agent's own states
        {"sequence": 1, "status": "partial"},  # the server's to derive
        {"sequence": 1, "status": "running", "result": result | {"duration_s": -1}},
        {"sequence": 1, "status": "running", "result": result | {"outcome": "x" * 65}},
        {"sequence": 1, "status": "running", "surprise": 1},
    ):
        with pytest.raises(ValidationError):
            CommandProgress.model_validate(bad)


def test_agents_are_never_answered_partial():
    """Agents built before ``partial`` existed read the answer with the statuses they know:
    a partial command is answered failed, as the agent reported it."""
    assert CommandProgressResponse.of(CommandStatus.PARTIAL).status is CommandStatus.FAILED
    for status in CommandStatus:
        if status is not CommandStatus.PARTIAL:
            assert CommandProgressResponse.of(status).status is status


def test_agent_messages_dispatch_on_type():
    for name, model in (
        ("agent_run_updates.json", RunUpdatesMessage),
        ("agent_update_agent.json", UpdateAgentMessage),
    ):
        message = agent_message_adapter.validate_json((GOLDEN / name).read_text("utf-8"))
        assert type(message) is model
    answer = HeartbeatResponse.model_validate_json(
        (GOLDEN / "heartbeat_response_update_agent.json").read_text("utf-8")
    )
    assert [type(c) for c in answer.commands] == [UpdateAgentCommand, RunUpdatesCommand]


@pytest.mark.parametrize(
    "wrong",
    [
        {"sha256": "6E57" + "0" * 60},
        {"sha256": "abc"},
        {"size_bytes": 0},
        {"size_bytes": 2**40},
        {"version": "0.2.0; rm -rf"},
        {"version": ""},
    ],
)
def test_an_agent_update_with_a_bad_field_is_refused(wrong: dict[str, object]):
    good = json.loads((GOLDEN / "agent_update_agent.json").read_text("utf-8"))["data"]
    UpdateAgentCommand.model_validate(good)
    with pytest.raises(ValidationError):
        UpdateAgentCommand.model_validate({**good, **wrong})


@pytest.mark.parametrize(
    "row",
    [
        {"scope": "user"},
        {"scope": "machine", "user": "AzureAD\\ada"},
        {"scope": "everyone", "user": "AzureAD\\ada"},
        {"scope": "user", "user": ""},
        {"scope": "user", "user": "x" * 257},
    ],
    ids=["user-scope-without-user", "machine-with-user", "unknown-scope", "empty", "too-long"],
)
def test_a_row_has_a_user_exactly_when_it_is_a_users(row: dict[str, object]):
    good = {"package_identifier": "Spotify.Spotify", "name": "Spotify"}
    update = {**good, "installed_version": "1.0", "available_version": "2.0"}
    UpdateItem.model_validate(update)
    UpdateItem.model_validate({**update, "scope": "user", "user": "AzureAD\\ada"})
    with pytest.raises(ValidationError):
        UpdateItem.model_validate({**update, **row})


def test_rows_without_a_scope_are_the_machines_and_keep_their_digest():

    old = InstalledItem.model_validate(
        {"package_identifier": "Git.Git", "name": "Git", "version": "2.47.1"}
    )
    assert (old.scope, old.user) == ("machine", None)
    explicit = InstalledItem.model_validate({**old.model_dump(), "scope": "machine"})
    assert list_digest([old]) == list_digest([explicit])
