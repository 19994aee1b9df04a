"""The MSI's values (API_URL, ENROLLMENT_SECRET, TAGS, UPDATE_PUBLISHER) taken into config.json
on the agent's first start, with a fake in place of the registry key the MSI writes them to."""

import json
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from lunaris_agent import config, installer_values, runtime
from lunaris_agent.config import ConfigError
from lunaris_agent.installer_values import (
    API_URL_VALUE,
    ENROLLMENT_SECRET_VALUE,
    TAGS_VALUE,
    UPDATE_PUBLISHER_VALUE,
)
from lunaris_agent.runtime import ExitCode

API_URL = "https://lunaris.example.com/api"
PUBLISHER = "CN=Contoso Ltd, O=Contoso Ltd, C=DE"


class FakeKey:
    """HKLM\\SOFTWARE\\Lunaris\\Agent\\Installer: absent (None) or holding values."""

    def __init__(self, values: Mapping[str, str] | None = None, *, readable: bool = True) -> None:
        self.values = None if values is None else dict(values)
        self.readable = readable
        self.deletes = 0

    def read(self) -> Mapping[str, str] | None:
        if not self.readable:
            raise PermissionError(5, "Access is denied")
        return self.values

    def delete(self) -> None:
        self.deletes += 1
        self.values = None


def given(
    api_url: str | None = API_URL,
    secret: str | None = "s3cret",
    tags: str | None = None,
    publisher: str | None = None,
) -> FakeKey:
    values = {}
    for name, value in (
        (API_URL_VALUE, api_url),
        (ENROLLMENT_SECRET_VALUE, secret),
        (TAGS_VALUE, tags),
        (UPDATE_PUBLISHER_VALUE, publisher),
    ):
        if value is not None:
            values[name] = value
    return FakeKey(values)


def read_json(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_first_start_writes_the_config_and_deletes_the_values(tmp_path: Path) -> None:
    path = tmp_path / "LunarisAgent" / "config.json"
    key = given()

    assert installer_values.take(path, key) is True

    written = config.load(path)
    assert written.api_url == API_URL
    assert written.enrollment_secret == "s3cret"
    assert written.device_id is not None  # the device has its identity from the first start
    assert key.values is None
    assert key.deletes == 1


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_the_config_it_writes_is_private(tmp_path: Path) -> None:
    path = tmp_path / "LunarisAgent" / "config.json"
    installer_values.take(path, given())
    assert path.stat().st_mode & 0o077 == 0


def test_no_key_means_nothing_to_do(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    key = FakeKey(None)
    assert installer_values.take(path, key) is False
    assert not path.exists()
    assert key.deletes == 0


def test_an_upgrade_with_new_values_keeps_the_identity_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    device_id = uuid.uuid4()
    path.write_text(
        json.dumps(
            {
                "api_url": "https://old.example.com/api",
                "device_id": str(device_id),
                "device_token": "token-1",
                "winget_path": "C:/tools/winget.exe",
                "verify_tls": False,
                "heartbeat_interval_s": 30,
                "a_key_from_a_newer_agent": [1, 2],
            }
        ),
        encoding="utf-8",
    )

    installer_values.take(path, given(secret="new-secret"))

    data = read_json(path)
    assert data["api_url"] == API_URL
    assert data["enrollment_secret"] == "new-secret"
    assert (data["device_id"], data["device_token"]) == (str(device_id), "token-1")
    assert data["winget_path"] == "C:/tools/winget.exe"
    assert data["verify_tls"] is False  # an administrator's choice survives the installer
    assert data["heartbeat_interval_s"] == 30
    assert data["a_key_from_a_newer_agent"] == [1, 2]


def test_a_secret_alone_keeps_the_configured_server(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    config.create(path, api_url=API_URL, enrollment_secret=None)

    installer_values.take(path, given(api_url=None, secret="again"))

    assert config.load(path).api_url == API_URL
    assert config.load(path).enrollment_secret == "again"


def test_blank_values_are_deleted_and_change_nothing(tmp_path: Path) -> None:
    # A repair rewrites the values from properties that were not given this time.
    path = tmp_path / "config.json"
    config.create(path, api_url=API_URL, enrollment_secret=None)
    before = path.read_bytes()
    key = given(api_url="  ", secret="")

    assert installer_values.take(path, key) is True

    assert path.read_bytes() == before
    assert key.values is None


def test_a_secret_without_any_url_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    key = given(api_url=None)

    with pytest.raises(ConfigError, match="API_URL"):
        installer_values.take(path, key)

    assert not path.exists()
    assert key.values == {ENROLLMENT_SECRET_VALUE: "s3cret"}  # installing again replaces it


def test_an_invalid_url_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    key = given(api_url="lunaris.example.com")

    with pytest.raises(ConfigError, match="API_URL is not valid"):
        installer_values.take(path, key)

    assert not path.exists()
    assert key.deletes == 0


def test_a_broken_config_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(ConfigError, match="not valid JSON"):
        installer_values.take(path, given())

    assert path.read_text(encoding="utf-8") == "{not json"


def test_without_elevation_the_values_wait_for_the_service(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    key = FakeKey({API_URL_VALUE: API_URL}, readable=False)
    assert installer_values.take(path, key) is False
    assert not path.exists()


def test_a_failed_delete_is_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Undeletable(FakeKey):
        def delete(self) -> None:
            raise PermissionError(5, "Access is denied")

    path = tmp_path / "config.json"
    assert installer_values.take(path, Undeletable({API_URL_VALUE: API_URL})) is True
    assert config.load(path).api_url == API_URL
    assert "taken again next start" in caplog.text


def test_only_the_default_config_takes_installer_values(tmp_path: Path) -> None:
    # Off Windows there is no registry, and a --config elsewhere is a configuration of its own.
    assert installer_values.take(tmp_path / "elsewhere.json") is False


def test_prepare_takes_the_values_before_it_reads_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.json"
    key = given()
    monkeypatch.setattr(installer_values, "_platform_store", lambda: key)
    monkeypatch.setattr(config, "default_config_path", lambda: path)

    prepared = runtime.prepare(path)

    assert prepared.api_url == API_URL
    assert prepared.enrollment_secret == "s3cret"
    assert key.values is None


def test_tags_given_to_the_installer_are_normalised_into_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    installer_values.take(path, given(tags="Berlin, finance,,kiosk"))
    assert config.load(path).tags == ("berlin", "finance", "kiosk")
    assert read_json(path)["tags"] == ["berlin", "finance", "kiosk"]


@pytest.mark.parametrize("tags", [None, "", " , "])
def test_an_upgrade_without_tags_keeps_the_configured_ones(
    tmp_path: Path, tags: str | None
) -> None:
    # None: no Tags value in the key; blank: the property was not given, as Windows writes it.
    path = tmp_path / "config.json"
    config.create(path, api_url=API_URL, enrollment_secret=None, tags=["berlin"])
    installer_values.take(path, given(api_url="https://new.example.com/api", tags=tags))
    assert config.load(path).api_url == "https://new.example.com/api"
    assert config.load(path).tags == ("berlin",)


def test_an_upgrade_with_tags_alone_replaces_them_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    first = config.create(path, api_url=API_URL, enrollment_secret=None, tags=["berlin"])
    key = given(api_url=None, secret=None, tags="finance")

    assert installer_values.take(path, key) is True

    taken = config.load(path)
    assert taken.tags == ("finance",)
    assert (taken.api_url, taken.device_id) == (API_URL, first.device_id)
    assert key.values is None


def test_invalid_tags_are_refused_saying_so_and_nothing_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    config.create(path, api_url=API_URL, enrollment_secret=None, tags=["berlin"])
    before = path.read_bytes()
    key = given(api_url="https://new.example.com/api", tags="kiosk,not a tag")

    with pytest.raises(ConfigError, match=r"TAGS is not valid: 'not a tag' is not a tag"):
        installer_values.take(path, key)

    assert path.read_bytes() == before  # not the new URL either: the values go together
    assert key.deletes == 0  # installing again with the right TAGS replaces them


def test_tags_without_any_url_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with pytest.raises(ConfigError, match="given TAGS but no API_URL"):
        installer_values.take(path, given(api_url=None, secret=None, tags="kiosk"))
    assert not path.exists()


def test_the_agent_stops_on_invalid_tags_with_the_reason_in_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.json"
    config.create(path, api_url=API_URL, enrollment_secret=None)
    monkeypatch.setattr(installer_values, "_platform_store", lambda: given(tags="Kiosk!"))
    monkeypatch.setattr(config, "default_config_path", lambda: path)

    assert runtime.once(config_path=path) == ExitCode.CONFIG

    assert "the installer's TAGS is not valid: 'kiosk!' is not a tag" in caplog.text


def test_the_update_publisher_given_to_the_installer_goes_into_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    key = given(publisher=f" {PUBLISHER} ")
    assert installer_values.take(path, key) is True
    assert config.load(path).update_publisher == PUBLISHER
    assert read_json(path)["update_publisher"] == PUBLISHER
    assert key.values is None


@pytest.mark.parametrize("publisher", [None, "", "  "])
def test_an_upgrade_without_an_update_publisher_keeps_the_configured_one(
    tmp_path: Path, publisher: str | None
) -> None:
    path = tmp_path / "config.json"
    config.create(path, api_url=API_URL, enrollment_secret=None, update_publisher=PUBLISHER)
    installer_values.take(path, given(api_url="https://new.example.com/api", publisher=publisher))
    assert config.load(path).api_url == "https://new.example.com/api"
    assert config.load(path).update_publisher == PUBLISHER


def test_an_upgrade_with_an_update_publisher_alone_replaces_it_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.json"
    first = config.create(
        path, api_url=API_URL, enrollment_secret=None, tags=["berlin"], update_publisher=PUBLISHER
    )
    key = given(api_url=None, secret=None, publisher="CN=Fabrikam Inc, C=US")

    assert installer_values.take(path, key) is True

    taken = config.load(path)
    assert taken.update_publisher == "CN=Fabrikam Inc, C=US"
    assert (taken.api_url, taken.device_id, taken.tags) == (API_URL, first.device_id, ("berlin",))


def test_an_update_publisher_that_is_no_subject_is_refused_and_nothing_is_taken(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.json"
    config.create(path, api_url=API_URL, enrollment_secret=None)
    before = path.read_bytes()
    key = given(api_url="https://new.example.com/api", publisher="Contoso Ltd")

    with pytest.raises(ConfigError, match="UPDATE_PUBLISHER is not valid: 'Contoso Ltd' is not"):
        installer_values.take(path, key)

    assert path.read_bytes() == before
    assert key.deletes == 0


def test_an_update_publisher_without_any_url_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    with pytest.raises(ConfigError, match="given UPDATE_PUBLISHER but no API_URL"):
        installer_values.take(path, given(api_url=None, secret=None, publisher=PUBLISHER))
    assert not path.exists()
