"""The inventory's wire contract: the digest's normal form, and what old peers still send."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from lunaris_protocol import (
    HeartbeatResponse,
    InstalledItem,
    InventoryReport,
    RegisterResponse,
    list_digest,
)

GOLDEN = Path(__file__).parent / "golden"


def _golden_items() -> list[InstalledItem]:
    report = InventoryReport.model_validate_json((GOLDEN / "inventory_report.json").read_text())
    assert report.software is not None
    return report.software


def test_the_golden_digest_is_the_digest_of_its_list():
    report = InventoryReport.model_validate_json((GOLDEN / "inventory_report.json").read_text())
    assert report.software is not None
    assert report.digest == list_digest(report.software)


def test_the_digest_does_not_depend_on_order():
    items = _golden_items()
    assert list_digest(items) == list_digest(list(reversed(items)))


@pytest.mark.parametrize(
    "change",
    [
        {"version": "8.6.3"},
        {"name": "Notepad++"},
        {"source": None},
        {"truncated": True},
        {"package_identifier": "Notepad++.Notepad+"},
    ],
)
def test_any_change_to_any_field_changes_the_digest(change: dict[str, object]):
    items = _golden_items()
    changed = [items[0].model_copy(update=change), *items[1:]]
    assert list_digest(changed) != list_digest(items)


def test_a_duplicate_row_changes_the_digest():
    items = _golden_items()
    assert list_digest([*items, items[0]]) != list_digest(items)


def test_fields_at_their_default_are_left_out_of_the_normal_form():
    # A field added later with a default must not change the digest of lists without it:
    # the explicit default and the omitted one hash alike.
    explicit = InstalledItem(
        package_identifier="7zip.7zip", name="7-Zip", version="24.08", source=None
    )
    omitted = InstalledItem(package_identifier="7zip.7zip", name="7-Zip", version="24.08")
    assert list_digest([explicit]) == list_digest([omitted])


def test_the_empty_list_has_a_digest_of_its_own():
    assert list_digest([]) != list_digest(_golden_items()[:1])
    assert len(list_digest([])) == 64


@pytest.mark.parametrize("digest", ["EE15" + "0" * 60, "ab", "g" * 64, "0" * 65])
def test_a_malformed_digest_is_refused(digest: str):
    with pytest.raises(ValidationError):
        InventoryReport(digest=digest)


def test_a_control_character_in_an_installed_id_is_refused():
    with pytest.raises(ValidationError):
        InstalledItem(package_identifier="Adobe\x00AIR", name="Adobe AIR", version="1")


def test_ids_with_spaces_are_carried():
    # ARP entries without a source: winget lists their registry key name as the id.
    item = InstalledItem(package_identifier="Adobe AIR", name="Adobe AIR", version="32.0")
    assert item.package_identifier == "Adobe AIR"


def test_replies_from_servers_without_an_inventory_interval_are_read():
    old = {"heartbeat_interval_s": 60, "scan_interval_s": 3600}
    assert HeartbeatResponse.model_validate(old).inventory_interval_s == 6 * 3600
    register = RegisterResponse.model_validate({**old, "device_token": "lnd_x"})
    assert register.inventory_interval_s == 6 * 3600


def test_the_digest_only_golden_has_no_list():
    raw = json.loads((GOLDEN / "inventory_report_digest_only.json").read_text())
    assert raw["software"] is None
    assert InventoryReport.model_validate(raw).digest == raw["digest"]


def test_a_report_says_one_thing():
    with pytest.raises(ValidationError, match="needs a digest"):
        InventoryReport()
    with pytest.raises(ValidationError, match="not both"):
        InventoryReport.model_validate(
            {"software": [], "scan_error": {"code": None, "message": "x"}}
        )
    assert InventoryReport.model_validate({"scan_error": {"message": "x"}}).software is None
