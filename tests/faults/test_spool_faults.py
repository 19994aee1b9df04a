"""The spool on a folder it cannot write (its place taken by a file, which stops root too):
what cannot go to disk waits in memory, in order, and goes to disk again once it can."""

import logging
from pathlib import Path

from lunaris_agent.spool import Spool
from lunaris_protocol import UpdateItem, UpdateReport


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


def test_a_report_that_cannot_be_written_waits_in_memory(tmp_path, caplog):
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    spool = Spool(blocker / "spool")

    with caplog.at_level(logging.DEBUG, logger="lunaris_agent.spool"):
        spool.put_report(report("A.A"))
        spool.put_report(report("B.B"))
    assert spool.pending_report() == report("B.B")  # the newest, as on disk
    assert spool.write_error == f"cannot write {blocker / 'spool' / 'report.json'}: Not a directory"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once, not at every scan
    assert spool.count() == 0  # nothing on disk, which is what `status` can see

    spool.report_sent(report("B.B"))
    assert spool.pending_report() is None

    blocker.unlink()
    spool.put_report(report("C.C"))
    assert spool.write_error is None
    assert Spool(blocker / "spool").pending_report() == report("C.C")  # on disk again


def test_an_older_report_on_disk_is_not_sent_after_a_newer_one_in_memory(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.put_report(report("OLD.Old"))
    # The disk fails: the spool folder's place is taken (as a stand-in for any write error).
    (tmp_path / "spool" / "report.json").unlink()
    (tmp_path / "spool").rmdir()
    (tmp_path / "spool").write_text("not a folder")
    spool.put_report(report("NEW.New"))
    assert spool.pending_report() == report("NEW.New")
    spool.report_sent(report("NEW.New"))
    assert spool.pending_report() is None


def test_results_keep_their_order_across_memory_and_disk(tmp_path):
    blocker = tmp_path / "data"
    blocker.mkdir()
    spool = Spool(blocker / "spool")
    spool.append_result("command", {"step": 0})  # on disk

    (blocker / "spool" / "results" / f"{1:012d}.json").rename(tmp_path / "kept.json")
    (blocker / "spool" / "results").rmdir()
    (blocker / "spool" / "results").write_text("not a folder")
    spool.append_result("command", {"step": 1})  # in memory
    assert spool.write_error is not None
    assert [r.payload["step"] for r in spool.pending_results()] == [1]

    # The disk is back (with the first result): memory goes to disk behind it, in order.
    (blocker / "spool" / "results").unlink()
    (blocker / "spool" / "results").mkdir()
    (tmp_path / "kept.json").rename(blocker / "spool" / "results" / f"{1:012d}.json")
    spool.append_result("command", {"step": 2})
    assert spool.write_error is None
    assert [r.payload["step"] for r in Spool(blocker / "spool").pending_results()] == [0, 1, 2]


def test_results_in_memory_are_bounded_too(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    spool = Spool(Path(blocker) / "spool", max_results=3)
    for step in range(5):
        spool.append_result("command", {"step": step})
    pending = spool.pending_results()
    assert [r.payload["step"] for r in pending] == [2, 3, 4]
    spool.result_sent(pending[0])
    assert [r.payload["step"] for r in spool.pending_results()] == [3, 4]
