"""config.json: validation with clear errors, atomic private writes, a device id made once."""

import json
import os
import stat
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from lunaris_agent import config
from lunaris_agent.config import AgentConfig, ConfigError
from lunaris_agent.identity import describe_windows

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_load_reads_every_key_and_resolves_directories_beside_the_file(tmp_path):
    device_id = uuid.uuid4()
    path = write(
        tmp_path / "config.json",
        {
            "api_url": "https://lunaris.example.com/api",
            "enrollment_secret": "s3cret",
            "device_id": str(device_id),
            "heartbeat_interval_s": 30,
            "scan_interval_s": 900,
            "winget_path": "C:/tools/winget.exe",
            "verify_tls": True,
            "ca_bundle": "/etc/ssl/corp.pem",
            "log_dir": "my-logs",
        },
    )
    loaded = config.load(path)
    assert loaded.api_url == "https://lunaris.example.com/api"
    assert loaded.enrollment_secret == "s3cret"
    assert loaded.device_id == device_id
    assert (loaded.heartbeat_interval_s, loaded.scan_interval_s) == (30, 900)
    assert loaded.winget_path == Path("C:/tools/winget.exe")
    assert loaded.tls_verify == "/etc/ssl/corp.pem"
    assert loaded.spool_dir == tmp_path / "spool"
    assert loaded.log_dir == tmp_path / "my-logs"


def test_a_byte_order_mark_from_notepad_is_accepted(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"api_url": "http://h/api"}).encode())
    assert config.load(path).api_url == "http://h/api"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"enrollment_secret": "x"}', "api_url: Field required"),
        ('{"api_url": "ftp://h/api"}', "api_url"),
        ('{"api_url": "http://h/api", "heartbeat_interval_s": 0}', "heartbeat_interval_s"),
        ('{"api_url": "http://h/api", "device_id": "not-a-uuid"}', "device_id"),
        ('{"api_url": "http://h/api", "verify_tls": "maybe"}', "verify_tls"),
        ('{"api_url": "http://h/api", "tags": ["berlin", "bad tag!"]}', "tags: .*'bad tag!'"),
        ('{"api_url": "http://h/api", "tags": "berlin,-kiosk"}', "tags: .*'-kiosk' is not a tag"),
        ('{"api_url": "http://h/api", "tags": [7]}', "tags.0"),
        ('{"api_url": "http://h/api", "tags": {"a": 1}}', "tags"),
        (json.dumps({"api_url": "http://h/api", "tags": [f"t{n}" for n in range(33)]}), "tags"),
    ],
)
def test_invalid_files_are_refused_with_the_key_named(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        config.load(path)


@pytest.mark.parametrize(
    "written",
    [
        ["Kiosk", " berlin ", "FINANCE", "berlin"],
        "Kiosk, berlin,,FINANCE,berlin",  # one comma-separated text, as the MSI's TAGS
    ],
)
def test_tags_are_a_list_or_one_text_normalised_by_the_protocols_rule(tmp_path, written):
    path = write(tmp_path / "config.json", {"api_url": "http://h/api", "tags": written})
    assert config.load(path).tags == ("berlin", "finance", "kiosk")


@pytest.mark.parametrize("written", [[], "", " , ", None])
def test_empty_tags_written_any_way_are_no_tags(tmp_path, written):
    path = write(tmp_path / "config.json", {"api_url": "http://h/api", "tags": written})
    assert config.load(path).tags == ()


def test_tags_are_written_back_normalised_and_only_when_there_are_some(tmp_path):
    path = write(tmp_path / "config.json", {"api_url": "http://h/api", "tags": "Kiosk,berlin"})
    config.save(replace(config.load(path), device_token="t"))
    assert json.loads(path.read_text())["tags"] == ["berlin", "kiosk"]
    assert config.load(path).tags == ("berlin", "kiosk")
    config.save(replace(config.load(path), tags=()))
    assert "tags" not in json.loads(path.read_text())


def test_create_sets_tags_when_given_and_keeps_them_otherwise(tmp_path):
    path = tmp_path / "config.json"
    config.create(path, api_url="http://h/api", enrollment_secret="s", tags=["Berlin", "kiosk"])
    assert config.load(path).tags == ("berlin", "kiosk")
    config.create(path, api_url="http://other/api", enrollment_secret=None)
    assert config.load(path).tags == ("berlin", "kiosk")
    config.create(path, api_url="http://other/api", enrollment_secret=None, tags=[])
    assert config.load(path).tags == ()
    with pytest.raises(ValueError, match="not a tag"):
        config.create(path, api_url="http://h/api", enrollment_secret=None, tags=["a b"])


PUBLISHER = "CN=Contoso Ltd, O=Contoso Ltd, C=DE"


def test_the_update_publisher_is_kept_exactly_and_written_only_when_set(tmp_path):
    path = write(tmp_path / "config.json", {"api_url": "http://h/api"})
    assert config.load(path).update_publisher is None
    config.save(replace(config.load(path), update_publisher=PUBLISHER))
    assert json.loads(path.read_text())["update_publisher"] == PUBLISHER
    assert config.load(path).update_publisher == PUBLISHER
    config.save(replace(config.load(path), update_publisher=None))
    assert "update_publisher" not in json.loads(path.read_text())


@pytest.mark.parametrize(
    ("written", "expected"), [(f"  {PUBLISHER} ", PUBLISHER), ("", None), ("  ", None)]
)
def test_an_update_publisher_as_a_person_may_write_it(tmp_path, written, expected):
    path = write(tmp_path / "config.json", {"api_url": "http://h/api", "update_publisher": written})
    assert config.load(path).update_publisher == expected


@pytest.mark.parametrize("written", ["Contoso Ltd", "CN=Contoso\nLtd", 7])
def test_an_update_publisher_that_is_no_subject_is_refused_naming_the_key(tmp_path, written):
    path = write(tmp_path / "config.json", {"api_url": "http://h/api", "update_publisher": written})
    with pytest.raises(ConfigError, match="update_publisher"):
        config.load(path)


def test_create_sets_the_update_publisher_keeps_it_and_removes_it(tmp_path):
    path = tmp_path / "config.json"
    config.create(path, api_url="http://h/api", enrollment_secret="s", update_publisher=PUBLISHER)
    assert config.load(path).update_publisher == PUBLISHER
    config.create(path, api_url="http://other/api", enrollment_secret=None, tags=["kiosk"])
    assert config.load(path).update_publisher == PUBLISHER
    config.create(path, api_url="http://other/api", enrollment_secret=None, update_publisher="")
    assert config.load(path).update_publisher is None
    with pytest.raises(ValueError, match="not a certificate subject"):
        config.create(path, api_url="http://h/api", enrollment_secret=None, update_publisher="x")


def test_a_missing_file_says_how_to_create_it(tmp_path):
    with pytest.raises(ConfigError, match="lunaris-agent configure"):
        config.load(tmp_path / "config.json")


def test_unknown_keys_survive_a_rewrite(tmp_path):
    path = write(tmp_path / "config.json", {"api_url": "http://h/api", "proxy": "http://p:3128"})
    config.save(replace(config.load(path), device_token="t"))
    data = json.loads(path.read_text())
    assert data["proxy"] == "http://p:3128"
    assert data["device_token"] == "t"


def test_device_id_is_made_once_and_kept(tmp_path):
    path = write(tmp_path / "config.json", {"api_url": "http://h/api"})
    first = config.with_device_id(config.load(path))
    assert first.device_id is not None
    again = config.with_device_id(config.load(path))
    assert again.device_id == first.device_id
    assert json.loads(path.read_text())["device_id"] == str(first.device_id)


@posix_only
def test_saved_files_are_owner_only_and_leave_no_temporary_behind(tmp_path):
    path = tmp_path / "agent" / "config.json"
    config.save(AgentConfig(path=path, api_url="http://h/api", device_token="t"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]


@posix_only
def test_secure_data_dir_restricts_a_new_directory_but_not_a_chosen_one(tmp_path):
    chosen = tmp_path / "shared"
    chosen.mkdir(mode=0o755)
    chosen.chmod(0o755)
    config.secure_data_dir(chosen)
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o755  # someone else's directory
    new = tmp_path / "new" / "agent"
    config.secure_data_dir(new)
    assert stat.S_IMODE(new.stat().st_mode) == 0o700


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    config.save(AgentConfig(path=path, api_url="http://h/api", device_token="old"))

    def fail(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="No space"):
        config.save(AgentConfig(path=path, api_url="http://h/api", device_token="new"))
    assert json.loads(path.read_text())["device_token"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_create_keeps_the_device_id_and_token_when_pointed_at_a_new_server(tmp_path):
    path = tmp_path / "config.json"
    first = config.create(path, api_url="http://old/api", enrollment_secret="s1")
    config.save(replace(first, device_token="t", enrollment_secret=None))
    second = config.create(path, api_url="https://new/api", enrollment_secret=None)
    assert second.device_id == first.device_id
    assert second.device_token == "t"
    assert second.api_url == "https://new/api"
    assert second.enrollment_secret is None


def test_create_refuses_to_overwrite_a_damaged_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{damaged", encoding="utf-8")
    with pytest.raises(ConfigError):
        config.create(path, api_url="http://h/api", enrollment_secret="s")
    assert path.read_text() == "{damaged"


def test_windows_11_is_named_as_such_although_the_registry_says_10():
    label = describe_windows(
        product_name="Windows 10 Pro",
        display_version="23H2",
        build="22631",
        revision="4460",
        major="10",
        minor="0",
    )
    assert label == "Windows 11 Pro 23H2 (10.0.22631.4460)"
    older = describe_windows(
        product_name="Windows 10 Enterprise",
        display_version="22H2",
        build="19045",
        revision="5131",
        major="10",
        minor="0",
    )
    assert older == "Windows 10 Enterprise 22H2 (10.0.19045.5131)"


def test_the_pcs_time_zone_is_read_and_read_again_hourly(monkeypatch):
    import tzlocal

    from lunaris_agent import identity

    monkeypatch.setattr(identity, "_zone_read_at", None)
    monkeypatch.setenv("TZ", "Europe/Berlin")
    tzlocal.reload_localzone()
    assert identity.local_time_zone(now=0.0) == "Europe/Berlin"
    monkeypatch.setenv("TZ", "America/New_York")  # the laptop lands in New York
    assert identity.local_time_zone(now=60.0) == "Europe/Berlin"  # read an hour ago at most
    assert identity.local_time_zone(now=3_600.0) == "America/New_York"
    monkeypatch.setenv("TZ", "Not a zone")
    assert identity.local_time_zone(now=7_200.0) is None
    monkeypatch.delenv("TZ")
    tzlocal.reload_localzone()
