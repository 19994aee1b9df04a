"""``winget list`` run for the inventory, against the real-process stand-in
(fakes/fake_winget.py), and ``lunaris-agent inventory``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lunaris_agent.cli import main
from lunaris_agent.scan_cli import inventory
from lunaris_agent.winget.installed import parse_list_output
from lunaris_agent.winget.results import InventoryResult, ScanFailure
from lunaris_agent.winget.run import MAX_OUTPUT_BYTES, WingetRun
from lunaris_agent.winget.upgrade import (
    LIST_INSTALLED_ARGS,
    UPGRADE_SCAN_ARGS,
    inventory_result_from_run,
    list_installed,
    scan,
)
from tests.agent.test_winget_runner import POSIX_ONLY, SAMPLES, FakeWinget

pytestmark = pytest.mark.e2e

LIST = SAMPLES / "021-list-three-columns-ids-with-spaces.txt"
NOTHING = SAMPLES / "028-upgrade-include-unknown-none-found.txt"
UPGRADES = SAMPLES / "001-upgrade-basic.txt"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeWinget:
    return FakeWinget(monkeypatch, tmp_path)


def _text(sample: Path) -> str:
    return sample.read_bytes().decode("utf-8")


async def test_list_installed_runs_winget_list_and_reads_every_row(fake: FakeWinget) -> None:
    result = await list_installed(fake.prints(LIST))
    assert fake.received_args() == list(LIST_INSTALLED_ARGS)
    assert result == parse_list_output(_text(LIST))
    assert result.error is None
    assert len(result.software) == 7


def test_the_list_asks_nothing_and_filters_no_source() -> None:
    assert LIST_INSTALLED_ARGS[0] == "list"
    assert {"--accept-source-agreements", "--disable-interactivity"} <= set(LIST_INSTALLED_ARGS)
    # --source would leave out every package that source does not know (the ARP entries).
    assert "--source" not in LIST_INSTALLED_ARGS


async def test_one_stand_in_answers_the_list_and_the_scan_apart(fake: FakeWinget) -> None:
    winget = fake.prints(UPGRADES)
    fake.answers("list", LIST)
    assert (await list_installed(winget)).software == parse_list_output(_text(LIST)).software
    assert fake.received_args() == list(LIST_INSTALLED_ARGS)
    assert len((await scan(winget)).updates) == 6
    assert fake.received_args() == list(UPGRADE_SCAN_ARGS)


async def test_nothing_installed_is_an_empty_list(fake: FakeWinget) -> None:
    result = await list_installed(fake.answers("list", NOTHING))
    assert result == InventoryResult(software=(), error=None)


@pytest.mark.parametrize("exit_code", [-1978335212, 2316632084])  # as PowerShell, as Python
def test_no_applications_found_after_its_message_is_an_empty_list(exit_code: int) -> None:
    # winget exits with NO_APPLICATIONS_FOUND after its message when nothing matched at all.
    run = WingetRun(exit_code=exit_code, output=_text(NOTHING), duration_s=1.0)
    assert inventory_result_from_run(run) == InventoryResult(software=(), error=None)
    # ... but not after a list: then the code says something the output does not.
    failed = inventory_result_from_run(WingetRun(exit_code, _text(LIST), duration_s=1.0))
    assert failed.software == ()
    assert failed.error is not None
    assert failed.error.code == "0x8A150014"


async def test_a_failing_exit_code_is_an_error_without_rows(fake: FakeWinget) -> None:
    result = await list_installed(fake.answers("list", LIST, exit_code=3))
    assert result == InventoryResult(
        software=(), error=ScanFailure(code="0x00000003", message="winget exited with 0x00000003")
    )


async def test_the_hresult_winget_printed_is_kept(fake: FakeWinget) -> None:
    sample = SAMPLES / "039-source-agreement-shown-then-0x8a15000f.txt"
    result = await list_installed(fake.answers("list", sample, exit_code=1))
    assert result.software == ()
    assert result.error is not None
    assert result.error.code == "0x8A15000F"


async def test_a_list_that_times_out_is_a_timeout_error(fake: FakeWinget) -> None:
    result = await list_installed(fake.hangs(), timeout_s=1)
    assert result == InventoryResult(
        software=(), error=ScanFailure(code="timeout", message="winget did not finish within 1 s")
    )


async def test_a_list_without_winget_says_so(tmp_path: Path) -> None:
    result = await list_installed(tmp_path / "winget.exe")
    assert result.software == ()
    assert result.error is not None
    assert result.error.code == "winget_not_found"


async def test_a_list_larger_than_the_bound_is_not_parsed(fake: FakeWinget) -> None:
    result = await list_installed(fake.floods(MAX_OUTPUT_BYTES + 200_000, then=LIST))
    assert result.software == ()
    assert result.error is not None
    assert result.error.code == "output_too_large"


@POSIX_ONLY
def test_a_killed_list_is_no_list() -> None:
    run = WingetRun(exit_code=-9, output=_text(LIST), duration_s=1.0)
    assert inventory_result_from_run(run) == InventoryResult(
        software=(), error=ScanFailure(code=None, message="winget was killed by SIGKILL")
    )


# --------------------------------------------------------------------------------------------
# lunaris-agent inventory
# --------------------------------------------------------------------------------------------


def test_inventory_json_from_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert inventory(from_file=LIST, winget_path=None, as_json=True) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == parse_list_output(_text(LIST)).to_json_dict()
    assert out.endswith("}\n")


def test_inventory_of_unreadable_output_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    sample = SAMPLES / "022-list-rows-only-arp-ids-truncated.txt"
    assert main(["inventory", "--json", "--from-file", str(sample)]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "software": [],
        "error": {"code": None, "message": "unparseable"},
    }


def test_inventory_table_for_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    sample = SAMPLES / "019-list-ellipsis-ids-unknown-2021.txt"
    assert main(["inventory", "--from-file", str(sample)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Name", "Id", "Version", "Source", "Notes"]
    assert set(lines[1]) == {"-", " "}
    assert any(line.startswith("Git ") and line.rstrip().endswith("winget") for line in lines)
    assert sum("id truncated" in line for line in lines) == 2
    assert lines[-1] == "8 installed"


def test_inventory_runs_winget_when_given_no_file(
    fake: FakeWinget, capsys: pytest.CaptureFixture[str]
) -> None:
    winget = fake.answers("list", NOTHING)
    assert main(["inventory", "--winget-path", str(winget)]) == 0
    assert capsys.readouterr().out == "nothing installed\n"
    assert fake.received_args() == list(LIST_INSTALLED_ARGS)


def test_inventory_failure_for_a_person(
    fake: FakeWinget, capsys: pytest.CaptureFixture[str]
) -> None:
    winget = fake.answers("list", LIST, exit_code=3)
    assert main(["inventory", "--winget-path", str(winget)]) == 1
    assert capsys.readouterr().out == (
        "winget list failed (0x00000003): winget exited with 0x00000003\n"
    )
