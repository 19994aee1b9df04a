"""The on-disk spool: the newest report and inventory only, results in order and bounded,
damage set aside."""

from lunaris_agent.spool import Spool
from lunaris_protocol import (
    InstalledItem,
    InventoryReport,
    ScanError,
    UpdateItem,
    UpdateReport,
    list_digest,
)


def report(*identifiers: str) -> UpdateReport:
    return UpdateReport(
        updates=[
            UpdateItem(
                package_identifier=identifier,
                name=identifier,
                installed_version="1.0",
                available_version="2.0",
            )
            for identifier in identifiers
        ]
    )


def test_only_the_newest_snapshot_is_kept_and_it_survives_a_restart(tmp_path):
    Spool(tmp_path).put_report(report("A.A"))
    Spool(tmp_path).put_report(report("B.B"))
    assert Spool(tmp_path).pending_report() == report("B.B")


def test_sending_an_older_snapshot_does_not_forget_a_newer_one(tmp_path):
    spool = Spool(tmp_path)
    spool.put_report(report("A.A"))
    sent = spool.pending_report()
    assert sent is not None
    spool.put_report(report("B.B"))  # a scan finished while the report was on the wire
    spool.report_sent(sent)
    assert spool.pending_report() == report("B.B")
    spool.report_sent(report("B.B"))
    assert spool.pending_report() is None


def test_a_report_spooled_by_an_older_agent_is_sent_then_forgotten(tmp_path):
    # Written before reports had tags: no "tags" key, so this version's bytes differ.
    (tmp_path / "report.json").write_text(
        '{"updates": [{"package_identifier": "A.A", "name": "A.A", "installed_version": "1.0",'
        ' "available_version": "2.0"}], "scan_error": null}',
        encoding="utf-8",
    )
    spool = Spool(tmp_path)
    sent = spool.pending_report()
    assert sent == report("A.A")
    assert sent is not None
    assert sent.tags is None  # read as the older agent wrote it
    spool.report_sent(sent)
    assert spool.pending_report() is None


def test_scan_errors_are_spooled_like_lists(tmp_path):
    spool = Spool(tmp_path)
    failed = UpdateReport(scan_error=ScanError(code="0x8A15000F", message="source data missing"))
    spool.put_report(failed)
    assert spool.pending_report() == failed


def test_results_come_back_in_order_across_restarts(tmp_path):
    for step in range(3):
        Spool(tmp_path).append_result("command", {"step": step})
    pending = Spool(tmp_path).pending_results()
    assert [result.payload["step"] for result in pending] == [0, 1, 2]
    Spool(tmp_path).result_sent(pending[0])
    Spool(tmp_path).append_result("command", {"step": 3})
    assert [r.payload["step"] for r in Spool(tmp_path).pending_results()] == [1, 2, 3]


def test_results_are_bounded_dropping_the_oldest(tmp_path):
    spool = Spool(tmp_path, max_results=3)
    for step in range(5):
        spool.append_result("command", {"step": step})
    assert [r.payload["step"] for r in spool.pending_results()] == [2, 3, 4]


def test_a_damaged_file_is_set_aside_not_allowed_to_block(tmp_path):
    spool = Spool(tmp_path)
    spool.put_report(report("A.A"))
    (tmp_path / "report.json").write_text("{half a fi", encoding="utf-8")
    spool.append_result("command", {"step": 0})
    spool.append_result("command", {"step": 1})
    first = tmp_path / "results" / f"{1:012d}.json"
    first.write_text("garbage", encoding="utf-8")

    assert spool.pending_report() is None
    assert [r.payload["step"] for r in spool.pending_results()] == [1]
    assert (tmp_path / "report.json.bad").exists()
    assert first.with_name(first.name + ".bad").exists()


def test_size_and_count_for_the_status_command(tmp_path):
    spool = Spool(tmp_path / "spool")
    assert (spool.count(), spool.size_bytes()) == (0, 0)
    spool.put_report(report("A.A"))
    spool.append_result("command", {"step": 0})
    assert spool.count() == 2
    assert spool.size_bytes() > 0


def inventory(*identifiers: str) -> InventoryReport:
    software = [
        InstalledItem(package_identifier=identifier, name=identifier, version="1.0")
        for identifier in identifiers
    ]
    return InventoryReport(digest=list_digest(software), software=software)


def test_only_the_newest_inventory_is_kept_beside_the_report_across_a_restart(tmp_path):
    Spool(tmp_path).put_report(report("A.A"))
    Spool(tmp_path).put_inventory(inventory("A.A", "B.B"))
    Spool(tmp_path).put_inventory(inventory("A.A", "C.C"))
    assert Spool(tmp_path).pending_inventory() == inventory("A.A", "C.C")
    assert Spool(tmp_path).pending_report() == report("A.A")
    assert Spool(tmp_path).count() == 2

    spool = Spool(tmp_path)
    spool.put_inventory(inventory("D.D"))  # listed while the older one was on the wire
    spool.inventory_sent(inventory("A.A", "C.C"))
    assert spool.pending_inventory() == inventory("D.D")
    spool.inventory_sent(inventory("D.D"))
    assert spool.pending_inventory() is None
    assert spool.pending_report() == report("A.A")


def test_a_damaged_inventory_is_set_aside(tmp_path):
    Spool(tmp_path).put_inventory(inventory("A.A"))
    (tmp_path / "inventory.json").write_text('{"software": "not a list"}', encoding="utf-8")
    assert Spool(tmp_path).pending_inventory() is None
    assert (tmp_path / "inventory.json.bad").exists()
    assert Spool(tmp_path).pending_inventory() is None


def test_an_inventory_waits_in_memory_while_the_disk_refuses_it(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.put_inventory(inventory("A.A"))
    (tmp_path / "spool").rename(tmp_path / "moved")
    (tmp_path / "spool").write_text("a file where the folder was", encoding="utf-8")
    spool.put_inventory(inventory("B.B"))
    assert spool.write_error is not None
    assert spool.pending_inventory() == inventory("B.B")
    spool.inventory_sent(inventory("B.B"))
    assert spool.pending_inventory() is None
