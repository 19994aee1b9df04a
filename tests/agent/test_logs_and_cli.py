"""The agent's log files and its small commands: configure, status, scan."""

import json
import logging
import sys
from pathlib import Path

import pytest

from lunaris_agent import logs
from lunaris_agent.cli import main

SAMPLES = Path(__file__).parent / "winget_samples"


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    logs.configure(None, foreground=False)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_log_files_are_json_lines_with_errors_and_extra_fields(tmp_path):
    logs.configure(tmp_path, foreground=False)
    log = logging.getLogger("lunaris_agent.test")
    log.info("scan: %d updates waiting", 7, extra={"device_id": "d-1"})
    try:
        raise RuntimeError("winget vanished")
    except RuntimeError:
        log.exception("scan failed")
    logging.getLogger("httpx").info("HTTP Request: POST ...")  # too chatty: filtered

    lines = [json.loads(line) for line in (tmp_path / "agent.log").read_text().splitlines()]
    assert [line["message"] for line in lines] == ["scan: 7 updates waiting", "scan failed"]
    assert lines[0]["level"] == "info"
    assert lines[0]["device_id"] == "d-1"
    assert lines[0]["ts"].endswith("+00:00")
    assert "RuntimeError: winget vanished" in lines[1]["error"]


def test_log_files_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "MAX_BYTES", 10_000)
    logs.configure(tmp_path, foreground=False)
    for number in range(2_000):
        logging.getLogger("lunaris_agent.test").info("line %d %s", number, "x" * 50)
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["agent.log", *(f"agent.log.{n}" for n in range(1, logs.BACKUPS + 1))]
    assert all(path.stat().st_size <= 10_000 for path in tmp_path.iterdir())


def test_configure_then_status(tmp_path, capsys, monkeypatch):
    config = tmp_path / "agent" / "config.json"
    monkeypatch.setenv("LUNARIS_ENROLLMENT_SECRET", "lne_from-the-environment")
    assert main(["--config", str(config), "configure", "--api-url", "https://h.example/api"]) == 0
    written = json.loads(config.read_text())
    assert written["enrollment_secret"] == "lne_from-the-environment"
    assert written["api_url"] == "https://h.example/api"

    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 0
    status = capsys.readouterr().out
    assert f"device id:     {written['device_id']}" in status
    assert "not registered yet (enrollment secret present)" in status
    assert "last contact:  never" in status
    assert "lne_from-the-environment" not in status


def test_configure_sets_tags_keeps_them_and_removes_them(tmp_path, capsys):
    config = tmp_path / "config.json"
    configure = ["--config", str(config), "configure", "--api-url", "https://h.example/api"]
    assert main([*configure, "--tags", "Berlin, finance,kiosk"]) == 0
    assert json.loads(config.read_text())["tags"] == ["berlin", "finance", "kiosk"]
    assert main([*configure, "--winget-path", "C:/winget.exe"]) == 0  # no --tags: kept
    assert json.loads(config.read_text())["tags"] == ["berlin", "finance", "kiosk"]
    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 0
    assert "tags:          berlin, finance, kiosk" in capsys.readouterr().out
    assert main([*configure, "--tags", ""]) == 0
    assert "tags" not in json.loads(config.read_text())


def test_configure_sets_the_update_publisher_keeps_it_and_removes_it(tmp_path):
    config = tmp_path / "config.json"
    configure = ["--config", str(config), "configure", "--api-url", "https://h.example/api"]
    publisher = "CN=Contoso Ltd, O=Contoso Ltd, C=DE"
    assert main([*configure, "--update-publisher", publisher]) == 0
    assert json.loads(config.read_text())["update_publisher"] == publisher
    assert main([*configure, "--tags", "kiosk"]) == 0  # no --update-publisher: kept
    assert json.loads(config.read_text())["update_publisher"] == publisher
    assert main([*configure, "--update-publisher", ""]) == 0
    assert "update_publisher" not in json.loads(config.read_text())


def test_configure_refuses_an_update_publisher_that_is_no_subject(tmp_path, capsys):
    config = tmp_path / "config.json"
    command = ["--config", str(config), "configure", "--api-url", "http://h/api"]
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--update-publisher", "Contoso Ltd"])
    assert exit_.value.code == 2
    assert "--update-publisher: 'Contoso Ltd' is not a certificate subject" in (
        capsys.readouterr().err
    )
    assert not config.exists()


def test_configure_refuses_a_tag_that_is_not_one(tmp_path, capsys):
    config = tmp_path / "config.json"
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(config), "configure", "--api-url", "http://h/api", "--tags", "a b"])
    assert exit_.value.code == 2
    assert "--tags: 'a b' is not a tag" in capsys.readouterr().err
    assert not config.exists()


def test_status_and_run_refuse_a_broken_config_with_its_reason(tmp_path, caplog):
    config = tmp_path / "config.json"
    config.write_text('{"api_url": "nope"}')
    assert main(["--config", str(config), "status"]) == 2
    assert main(["--config", str(config), "once"]) == 2
    assert "api_url" in caplog.text


def test_scan_prints_a_readable_table_from_saved_output(capsys):
    sample = SAMPLES / "006-upgrade-explicit-targeting-second-table.txt"
    assert main(["scan", "--from-file", str(sample)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["Name", "Id", "Installed", "Available", "Source", "Notes"]
    assert set(table[1]) <= {"-", " "}
    assert any("explicit targeting" in line for line in table)
    expected = json.loads(sample.with_name(sample.stem + ".expected.json").read_text())
    assert table[-1] == f"{len(expected['updates'])} updates waiting"


def test_scan_of_a_failure_exits_1_and_says_why(capsys):
    sample = SAMPLES / "039-source-agreement-shown-then-0x8a15000f.txt"
    assert main(["scan", "--from-file", str(sample)]) == 1
    assert capsys.readouterr().out.lower().startswith("scan failed (0x8a15000f)")


@pytest.mark.skipif(sys.platform == "win32", reason="the service exists there")
def test_the_service_command_says_it_is_for_windows_elsewhere(capsys):
    assert main(["service", "install"]) == 2
    assert "Windows only" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("order", "level"),
    [
        (["-v", "--config", "{config}", "once"], logging.DEBUG),
        (["once", "--config", "{config}", "--verbose"], logging.DEBUG),
        (["--verbose", "once", "--config", "{config}"], logging.DEBUG),
        (["--config", "{config}", "once", "-v"], logging.DEBUG),
        (["once", "--config", "{config}"], logging.INFO),
    ],
)
def test_the_shared_options_go_before_or_after_the_command(tmp_path, capsys, order, level):
    config = tmp_path / "config.json"
    config.write_text('{"api_url": "nope"}')
    assert main([part.format(config=config) for part in order]) == 2
    assert "api_url" in capsys.readouterr().err  # this config was read, not the default one
    assert logging.getLogger().level == level


def test_an_option_after_the_command_wins_and_one_before_it_stands_alone(tmp_path, capsys):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    for path in (first, second):
        assert main(["configure", "--config", str(path), "--api-url", "https://h.example/api"]) == 0
    capsys.readouterr()
    assert main(["--config", str(first), "status", "--config", str(second)]) == 0
    assert f"config:        {second}" in capsys.readouterr().out
    assert main(["--config", str(first), "status"]) == 0
    assert f"config:        {first}" in capsys.readouterr().out
