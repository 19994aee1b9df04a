"""The values an administrator gave the MSI (``API_URL``, ``ENROLLMENT_SECRET``, ``TAGS``,
``UPDATE_PUBLISHER``), taken into ``config.json`` when the agent starts, then deleted where
the MSI left them.

An MSI cannot write a file with a private ACL (wixl cannot author permissions on files), and a
custom action that runs the agent with the secret on its command line would show the secret to
anyone who can list processes. So the MSI writes the values to the registry key
``HKLM\\SOFTWARE\\Lunaris\\Agent\\Installer``, which it creates readable by SYSTEM and
Administrators only (``MsiLockPermissionsEx``), and starts the service. The service runs as
SYSTEM and, before anything else (:func:`lunaris_agent.runtime.prepare`):

1. reads the key; nothing to do when it is not there (every start but the first after an
   install or an upgrade that was given values);
2. writes the values into ``config.json`` with :func:`lunaris_agent.config.create`, which keeps
   the device id, the token and every other setting, and writes the file readable by SYSTEM and
   Administrators only. A value left blank (a property not given) changes nothing: an upgrade
   with ``API_URL`` but without ``TAGS`` or ``UPDATE_PUBLISHER`` keeps the configured ones;
3. deletes the key. A crash between 2 and 3 only means the same values are taken again.

The enrollment secret then lives in ``config.json`` alone, until the first registration
removes it from there too. Only the service's default config path takes installer values: a
``--config`` somewhere else is a configuration of its own.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol

from lunaris_agent import config as config_file
from lunaris_agent.config import ConfigError
from lunaris_protocol.tags import normalise_tags, split_tags

log = logging.getLogger(__name__)

REGISTRY_KEY: Final = r"SOFTWARE\Lunaris\Agent\Installer"
"""Under HKEY_LOCAL_MACHINE, in the 64-bit view; lunaris-agent.wxs writes it."""
API_URL_VALUE: Final = "ApiUrl"
ENROLLMENT_SECRET_VALUE: Final = "EnrollmentSecret"  # noqa: S105 - a value's name
TAGS_VALUE: Final = "Tags"
"""Comma-separated, as given to msiexec (``TAGS=berlin,finance``)."""
UPDATE_PUBLISHER_VALUE: Final = "UpdatePublisher"
"""The signer an agent update must carry (``UPDATE_PUBLISHER="CN=Contoso Ltd, C=DE"``)."""
VALUE_NAMES: Final = (API_URL_VALUE, ENROLLMENT_SECRET_VALUE, TAGS_VALUE, UPDATE_PUBLISHER_VALUE)


class InstallerValueStore(Protocol):
    """Where the installer left its values: the registry on Windows, a fake in tests."""

    def read(self) -> Mapping[str, str] | None:
        """The values by name, or None when the installer left none."""

    def delete(self) -> None:
        """Removes the values; called once they are safe in config.json."""


def take(config_path: Path, store: InstallerValueStore | None = None) -> bool:
    """Moves the installer's values into ``config_path``; True when there were any (the caller
    logs it: this runs before the agent's log is set up).

    Raises :class:`ConfigError` when they cannot make a valid config (an API URL that is not
    one, a tag that is not one, or values without any URL), before writing any of them; they
    are then left where they are, since the fix is to run the installer again with the right
    values, which replaces them."""
    if store is None:
        if config_path != config_file.default_config_path():
            return False
        store = _platform_store()
        if store is None:
            return False
    try:
        values = store.read()
    except PermissionError:
        # Not elevated (an administrator's console): the service takes them when it starts.
        log.debug("cannot read the installer's values without elevation; leaving them")
        return False
    if values is None:
        return False
    api_url = (values.get(API_URL_VALUE) or "").strip() or None
    secret = (values.get(ENROLLMENT_SECRET_VALUE) or "").strip() or None
    tags = _tags(values.get(TAGS_VALUE) or "")
    publisher = _publisher(values.get(UPDATE_PUBLISHER_VALUE) or "")
    if any(value is not None for value in (api_url, secret, tags, publisher)):
        _write(
            config_path,
            api_url=api_url,
            enrollment_secret=secret,
            tags=tags,
            update_publisher=publisher,
        )
    try:
        store.delete()
    except OSError as error:
        log.warning("could not delete the installer's values (taken again next start): %s", error)
    return True


def _tags(text: str) -> list[str] | None:
    """``TAGS`` normalised by the protocol's rule; None when it was not given."""
    given = split_tags(text)
    if not given:
        return None
    try:
        return normalise_tags(given)
    except ValueError as error:
        raise ConfigError(
            f"the installer's TAGS is not valid: {error}; install again with TAGS=tag,tag"
        ) from None


def _publisher(text: str) -> str | None:
    """``UPDATE_PUBLISHER`` as a subject; None when it was not given (blank)."""
    try:
        return config_file.check_publisher(text)
    except ValueError as error:
        raise ConfigError(
            f"the installer's UPDATE_PUBLISHER is not valid: {error}; install again with "
            'UPDATE_PUBLISHER="CN=..., O=..., C=..."'
        ) from None


def _write(
    config_path: Path,
    *,
    api_url: str | None,
    enrollment_secret: str | None,
    tags: list[str] | None,
    update_publisher: str | None,
) -> None:
    try:
        current: config_file.AgentConfig | None = config_file.load(config_path)
    except ConfigError:
        if config_path.exists():
            raise  # a broken file is for a person to look at, not to overwrite
        current = None
    url = api_url or (current.api_url if current is not None else None)
    if url is None:
        given = next(
            name
            for name, value in (
                ("an enrollment secret", enrollment_secret),
                ("TAGS", tags),
                ("UPDATE_PUBLISHER", update_publisher),
            )
            if value is not None
        )
        raise ConfigError(
            f"the installer was given {given} but no API_URL, and {config_path} "
            "does not exist: install again with API_URL=https://HOST/api"
        )
    try:
        config_file.create(
            config_path,
            api_url=url,
            enrollment_secret=enrollment_secret,
            # create() takes these as arguments; keep what the administrator had set.
            verify_tls=current.verify_tls if current is not None else True,
            tags=tags,  # None keeps the configured ones
            update_publisher=update_publisher,  # likewise
        )
    except ValueError as error:
        raise ConfigError(f"the installer's API_URL is not valid: {error}") from None


if sys.platform == "win32":
    import winreg

    class _RegistryStore:
        _ACCESS: Final = winreg.KEY_WOW64_64KEY  # the 64-bit view, as the x64 MSI wrote it

        def read(self) -> Mapping[str, str] | None:
            try:
                key = winreg.OpenKey(
                    winreg.HKEY_LOCAL_MACHINE, REGISTRY_KEY, 0, winreg.KEY_READ | self._ACCESS
                )
            except FileNotFoundError:
                return None
            values = {}
            with key:
                for name in VALUE_NAMES:
                    try:
                        data, kind = winreg.QueryValueEx(key, name)
                    except FileNotFoundError:
                        continue
                    if kind in (winreg.REG_SZ, winreg.REG_EXPAND_SZ) and isinstance(data, str):
                        values[name] = data
            return values

        def delete(self) -> None:
            with contextlib.suppress(FileNotFoundError):
                winreg.DeleteKeyEx(winreg.HKEY_LOCAL_MACHINE, REGISTRY_KEY, self._ACCESS, 0)

    def _platform_store() -> InstallerValueStore | None:
        return _RegistryStore()

else:

    def _platform_store() -> InstallerValueStore | None:
        return None  # the MSI exists for Windows only
