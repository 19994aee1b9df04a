"""The agent's ``config.json``: where the server is, who this device is, how to reach winget,
and the tags the device reports.

On Windows it lives in ``C:\\ProgramData\\LunarisAgent`` (the known folder, resolved through the
shell), elsewhere in a per-user or system state directory. The spool and the logs live beside
it unless the file names other directories.

The file holds the device token, and the enrollment secret until the first registration, so
every write is atomic (a crash never leaves half a file) and readable by its owner only: mode
0600 on POSIX, SYSTEM and Administrators on Windows. Keys this version does not know are kept
as they are, so a downgrade followed by an upgrade loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from lunaris_agent.client import check_api_url
from lunaris_protocol.agent import DEFAULT_INVENTORY_INTERVAL_S
from lunaris_protocol.tags import TagList, normalise_tags

CONFIG_FILE_NAME: Final = "config.json"
WINDOWS_DIR_NAME: Final = "LunarisAgent"
POSIX_DIR_NAME: Final = "lunaris-agent"

DEFAULT_HEARTBEAT_INTERVAL_S: Final = 60
DEFAULT_SCAN_INTERVAL_S: Final = 3600


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid; the message says which key."""


class _ConfigFile(BaseModel):
    """The file's schema: validates what a person may have typed, keeps unknown keys."""

    model_config = ConfigDict(extra="allow")

    api_url: str
    enrollment_secret: str | None = None
    device_id: UUID | None = None
    device_token: str | None = None
    registration_key: str | None = None
    heartbeat_interval_s: int = Field(default=DEFAULT_HEARTBEAT_INTERVAL_S, ge=1, le=86_400)
    scan_interval_s: int = Field(default=DEFAULT_SCAN_INTERVAL_S, ge=1, le=86_400)
    inventory_interval_s: int = Field(default=DEFAULT_INVENTORY_INTERVAL_S, ge=1, le=86_400)
    winget_path: Path | None = None
    user_sessions_file: Path | None = None
    verify_tls: bool = True
    ca_bundle: Path | None = None
    spool_dir: Path | None = None
    log_dir: Path | None = None
    tags: TagList | None = None
    """A JSON list of tags or one comma-separated text, as a person may write either."""
    update_publisher: str | None = None

    @field_validator("api_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        return check_api_url(value)

    @field_validator("enrollment_secret", "device_token", "registration_key")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("update_publisher")
    @classmethod
    def _subject(cls, value: str | None) -> str | None:
        return None if value is None else check_publisher(value)


@dataclass(frozen=True)
class AgentConfig:
    """One read of ``config.json``. Change it with :func:`dataclasses.replace` and :func:`save`."""

    path: Path
    api_url: str
    enrollment_secret: str | None = None
    device_id: UUID | None = None
    device_token: str | None = None
    registration_key: str | None = None
    """Made for a registration the server holds for an admin's approval, and sent with every
    attempt until one succeeds: the approval admits the agent holding it."""
    heartbeat_interval_s: int = DEFAULT_HEARTBEAT_INTERVAL_S
    """The server's last answer; the server decides, the file remembers it across restarts."""
    scan_interval_s: int = DEFAULT_SCAN_INTERVAL_S
    inventory_interval_s: int = DEFAULT_INVENTORY_INTERVAL_S
    """How often at most ``winget list`` runs for the software inventory (also after installs)."""
    winget_path: Path | None = None
    user_sessions_file: Path | None = None
    """Stand-in user sessions (:class:`lunaris_agent.sessions.ProfileSessions`), for per-user
    scans on Linux and macOS and in tests; the Windows service asks Windows."""
    verify_tls: bool = True
    ca_bundle: Path | None = None
    spool_dir_setting: Path | None = None
    log_dir_setting: Path | None = None
    tags: tuple[str, ...] = ()
    """Normalised (:func:`lunaris_protocol.tags.normalise_tags`): what every registration and
    update report says the device's agent tags are; none clears them on the server."""
    update_publisher: str | None = None
    """The Authenticode signer subject an agent MSI must carry to be installed by an
    UPDATE_AGENT command, exactly as Windows writes it (``CN=Contoso Ltd, O=Contoso Ltd,
    C=DE``): a server cannot push code of its own making; None: no signature check."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not know, written back unchanged."""

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def spool_dir(self) -> Path:
        return self._beside(self.spool_dir_setting, "spool")

    @property
    def log_dir(self) -> Path:
        return self._beside(self.log_dir_setting, "logs")

    @property
    def state_path(self) -> Path:
        """Last contact and other facts that change often, kept out of the config file."""
        return self.directory / "state.json"

    @property
    def tls_verify(self) -> bool | str:
        """What the HTTP client takes: a CA bundle path, or whether to verify at all."""
        if not self.verify_tls:
            return False
        return str(self.ca_bundle) if self.ca_bundle is not None else True

    def _beside(self, setting: Path | None, name: str) -> Path:
        if setting is None:
            return self.directory / name
        return setting if setting.is_absolute() else self.directory / setting

    def to_json_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            **self.extra,
            "api_url": self.api_url,
            "enrollment_secret": self.enrollment_secret,
            "device_id": None if self.device_id is None else str(self.device_id),
            "device_token": self.device_token,
            "registration_key": self.registration_key,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "scan_interval_s": self.scan_interval_s,
            "inventory_interval_s": self.inventory_interval_s,
            "winget_path": _path_or_none(self.winget_path),
            "user_sessions_file": _path_or_none(self.user_sessions_file),
            "verify_tls": self.verify_tls,
            "ca_bundle": _path_or_none(self.ca_bundle),
            "update_publisher": self.update_publisher,
        }
        # Optional directories are written only when set, so the defaults can move later.
        if self.spool_dir_setting is not None:
            data["spool_dir"] = str(self.spool_dir_setting)
        if self.log_dir_setting is not None:
            data["log_dir"] = str(self.log_dir_setting)
        if self.tags:
            data["tags"] = list(self.tags)
        return {key: value for key, value in data.items() if value is not None}


def _path_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def default_data_dir() -> Path:
    """Where the config, spool and logs live when ``--config`` is not given."""
    if sys.platform == "win32":
        from lunaris_agent.windows.data_dir import program_data_dir

        return program_data_dir() / WINDOWS_DIR_NAME
    if sys.platform == "darwin":
        if os.geteuid() == 0:
            return Path("/Library/Application Support") / WINDOWS_DIR_NAME
        return Path.home() / "Library" / "Application Support" / WINDOWS_DIR_NAME
    if os.geteuid() == 0:
        return Path("/var/lib") / POSIX_DIR_NAME
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / POSIX_DIR_NAME


def default_config_path() -> Path:
    return default_data_dir() / CONFIG_FILE_NAME


def load(path: Path) -> AgentConfig:
    """Reads and validates ``path``; every problem is a :class:`ConfigError` naming the key."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist: create it with `lunaris-agent configure --api-url URL "
            "--enrollment-secret SECRET`"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        # utf-8-sig: Notepad and PowerShell 5 write a byte-order mark.
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    try:
        parsed = _ConfigFile.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_describe(error)}") from error
    return AgentConfig(
        path=path,
        api_url=parsed.api_url,
        enrollment_secret=parsed.enrollment_secret,
        device_id=parsed.device_id,
        device_token=parsed.device_token,
        registration_key=parsed.registration_key,
        heartbeat_interval_s=parsed.heartbeat_interval_s,
        scan_interval_s=parsed.scan_interval_s,
        inventory_interval_s=parsed.inventory_interval_s,
        winget_path=parsed.winget_path,
        user_sessions_file=parsed.user_sessions_file,
        verify_tls=parsed.verify_tls,
        ca_bundle=parsed.ca_bundle,
        spool_dir_setting=parsed.spool_dir,
        log_dir_setting=parsed.log_dir,
        tags=tuple(parsed.tags or ()),
        update_publisher=parsed.update_publisher,
        extra=dict(parsed.model_extra or {}),
    )


def check_publisher(subject: str) -> str | None:
    """A signer's subject as configured: stripped, None when blank; a ValueError when it is
    not a distinguished name (``CN=...``) on one line."""
    subject = subject.strip()
    if not subject:
        return None
    if "=" not in subject or any(ord(char) < 32 for char in subject):
        raise ValueError(f"{subject!r} is not a certificate subject such as CN=Contoso Ltd, C=DE")
    return subject


def _describe(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(file)"
        problems.append(f"{key}: {problem['msg']}")
    return "; ".join(problems)


def with_device_id(config: AgentConfig) -> AgentConfig:
    """The config with a device id, making and saving one the first time: the id is the
    device's identity on the server and must never change afterwards."""
    if config.device_id is not None:
        return config
    updated = replace(config, device_id=uuid4())
    save(updated)
    return updated


def save(config: AgentConfig) -> None:
    """Writes the whole file atomically, readable by its owner (or SYSTEM and Administrators)
    only."""
    payload = json.dumps(config.to_json_dict(), indent=2, ensure_ascii=False) + "\n"
    write_private_file(config.path, payload.encode("utf-8"))


def secure_data_dir(directory: Path) -> None:
    """Creates ``directory`` for the agent's private files. The default data directory is
    restricted even when it exists already: the MSI creates it with the inherited ACL (users may
    read) and its toolset cannot set ACLs. A directory someone else chose is left as it is; the
    files in it are private anyway."""
    created = not directory.exists()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not created and directory != default_data_dir():
        return
    if sys.platform == "win32":
        from lunaris_agent.windows.data_dir import restrict_to_administrators

        restrict_to_administrators(directory)
    else:
        directory.chmod(0o700)


def write_private_file(path: Path, content: bytes) -> None:
    """Replaces ``path`` with ``content`` in one step: write a private temporary file beside it,
    flush it to disk, then rename it over the old one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates it with mode 0600
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if sys.platform == "win32":
            from lunaris_agent.windows.data_dir import restrict_to_administrators

            restrict_to_administrators(Path(temporary))
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """Makes the rename itself durable (POSIX); Windows has no directory handles to flush."""
    if sys.platform == "win32":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def create(
    path: Path,
    *,
    api_url: str,
    enrollment_secret: str | None,
    winget_path: Path | None = None,
    verify_tls: bool = True,
    ca_bundle: Path | None = None,
    tags: Sequence[str] | None = None,
    update_publisher: str | None = None,
) -> AgentConfig:
    """Writes a new config, or points an existing one at a new server or secret while keeping
    the device id and everything else it holds. ``tags`` replaces the configured tags (an
    empty list removes them); None keeps them. A tag that is not one is a ValueError.
    ``update_publisher`` likewise: a subject sets it, blank removes it, None keeps it."""
    try:
        current: AgentConfig | None = load(path)
    except ConfigError:
        if path.exists():
            raise
        current = None
    if current is None:
        config = AgentConfig(path=path, api_url=check_api_url(api_url))
    else:
        config = replace(current, api_url=check_api_url(api_url))
    config = replace(config, verify_tls=verify_tls)
    if enrollment_secret:
        config = replace(config, enrollment_secret=enrollment_secret)
    if winget_path is not None:
        config = replace(config, winget_path=winget_path)
    if ca_bundle is not None:
        config = replace(config, ca_bundle=ca_bundle)
    if tags is not None:
        config = replace(config, tags=tuple(normalise_tags(list(tags))))
    if update_publisher is not None:
        config = replace(config, update_publisher=check_publisher(update_publisher))
    if config.device_id is None:
        config = replace(config, device_id=uuid4())
    secure_data_dir(path.parent)
    save(config)
    return config
