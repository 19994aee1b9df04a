"""The PC's facts for the device page: Windows' restart markers, the console user, the
SMBIOS serial number and the addresses, read by plain functions driven by fakes here; and
the agent sends them with its registration and heartbeats, read again every few minutes."""

import logging
import random
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lunaris_agent import config as config_file
from lunaris_agent import machine
from lunaris_agent.client import AgentClient
from lunaris_agent.identity import DeviceFacts
from lunaris_agent.machine import ChangingFacts, ChangingFactsReader, fitted, own_addresses
from lunaris_agent.runtime.agent import Agent
from lunaris_agent.windows import facts as windows
from lunaris_protocol import HeartbeatRequest, UpdateReport
from tests.support import create_api_token, create_secret, create_user


class FakeRegistry:
    """HKLM as a dict: key path -> its values."""

    def __init__(self, keys: dict[str, dict[str, object]]) -> None:
        self.keys = keys

    def key_exists(self, path: str) -> bool:
        return path in self.keys

    def value(self, path: str, name: str) -> object | None:
        return self.keys.get(path, {}).get(name)


@pytest.mark.parametrize(
    ("keys", "pending"),
    [
        ({}, False),
        ({windows.SESSION_MANAGER: {}}, False),
        ({windows.CBS_REBOOT_PENDING: {}}, True),
        ({windows.WU_REBOOT_REQUIRED: {}}, True),
        ({windows.SESSION_MANAGER: {windows.PENDING_RENAMES: ["", ""]}}, False),
        ({windows.SESSION_MANAGER: {windows.PENDING_RENAMES: []}}, False),
        (
            {windows.SESSION_MANAGER: {windows.PENDING_RENAMES: [r"\??\C:\a.tmp", ""]}},
            True,
        ),
    ],
    ids=["none", "no-renames", "cbs", "windows-update", "empty-renames", "no-pairs", "renames"],
)
def test_windows_restart_markers(keys: dict[str, dict[str, object]], pending: bool):
    assert windows.reboot_pending(FakeRegistry(keys)) is pending


def test_the_bios_key_gives_model_and_manufacturer():
    registry = FakeRegistry(
        {windows.BIOS_KEY: {"SystemProductName": "Latitude 7440 ", "SystemManufacturer": ""}}
    )
    assert windows.bios_model(registry) == ("Latitude 7440", None)
    assert windows.bios_model(FakeRegistry({})) == (None, None)


def test_the_console_user_is_domain_backslash_user():
    names = {(1, windows.WTS_USER_NAME): "anna", (1, windows.WTS_DOMAIN_NAME): "CONTOSO"}

    def query(session: int, info_class: int) -> str:
        return names.get((session, info_class), "")

    assert windows.console_user_of(1, query) == "CONTOSO\\anna"
    assert windows.console_user_of(2, query) == ""  # the logon screen: nobody
    assert windows.console_user_of(windows.NO_SESSION, query) == ""


def smbios(*structures: bytes) -> bytes:
    table = b"".join(structures)
    return struct.pack("<BBBBI", 0, 3, 4, 0, len(table)) + table


def structure(kind: int, formatted: bytes, *strings: bytes) -> bytes:
    head = struct.pack("<BBH", kind, 4 + len(formatted), 0x100) + formatted
    return head + (b"\0".join(strings) + b"\0\0" if strings else b"\0\0")


def test_the_serial_number_comes_from_smbios_system_information():
    bios = structure(0, b"\x01\x02\x00\x00", b"Dell Inc.", b"1.2.3")
    system = structure(1, b"\x01\x02\x00\x03" + b"\0" * 17, b"Dell Inc.", b"Latitude", b"5CG1X")
    raw = smbios(bios, system, structure(127, b""))
    assert windows.smbios_system(raw) == windows.SmbiosSystem("Dell Inc.", "Latitude", "5CG1X")


def test_placeholder_and_missing_serial_numbers_are_none():
    filled = structure(1, b"\x01\x02\x00\x03", b"OEM", b"Board", b"To Be Filled By O.E.M.")
    assert windows.smbios_system(smbios(filled)) == windows.SmbiosSystem("OEM", "Board", None)
    no_strings = structure(1, b"\x00\x00\x00\x00")
    assert windows.smbios_system(smbios(no_strings)) == windows.SmbiosSystem(None, None, None)
    assert windows.smbios_system(smbios(structure(127, b""))) is None
    assert windows.smbios_system(b"\0\0") is None
    assert windows.smbios_system(smbios(b"\x01\x20\x00\x01\x01")) is None  # cut short


def test_own_addresses_leave_out_loopback_link_local_and_duplicates():
    resolved = ["127.0.1.1", "::1", "fe80::1%eth0", "10.0.0.7", "2001:db8::7", "not one"]
    found = own_addresses(lambda: resolved, lambda: ["10.0.0.7", "::"])
    assert found == ["10.0.0.7", "2001:db8::7"]
    many = [f"10.0.1.{n}" for n in range(40)]
    assert len(own_addresses(lambda: many, list)) == 16
    assert own_addresses() == own_addresses()  # this machine: whatever it has, no error


def test_facts_are_fitted_to_the_protocols_bounds():
    assert fitted(" Latitude\x00 7440\u200b ", 128) == "Latitude 7440"
    assert fitted("x" * 300, 128) == "x" * 128
    assert fitted("\x07", 128) is None
    assert fitted(None, 128) is None


def test_an_unreadable_fact_is_none_and_logged_once(caplog, monkeypatch):
    monkeypatch.setattr(machine, "_unreadable", set())

    def broken() -> str:
        raise OSError("access denied")

    with caplog.at_level(logging.DEBUG, logger="lunaris_agent.machine"):
        assert machine.read_or_none("serial number", broken) is None
        assert machine.read_or_none("serial number", broken) is None
    assert [r.getMessage() for r in caplog.records].count(
        "the PC's serial number cannot be read: access denied"
    ) == 1


def test_this_machines_facts_are_read_without_error():
    hardware = machine.read_hardware()
    changing = machine.read_changing_facts()
    HeartbeatRequest(
        model=hardware.model,
        manufacturer=hardware.manufacturer,
        serial_number=hardware.serial_number,
        logged_on_user=changing.logged_on_user,
        ip_addresses=changing.ip_addresses,
        reboot_pending=changing.reboot_pending,
    )


def test_the_changing_facts_are_read_again_every_few_minutes():
    clock, reads = [0.0], []

    def read() -> ChangingFacts:
        reads.append(clock[0])
        return ChangingFacts(logged_on_user=f"user{len(reads)}")

    reader = ChangingFactsReader(read, clock=lambda: clock[0])
    assert reader().logged_on_user == "user1"
    clock[0] = 60.0
    assert reader().logged_on_user == "user1"  # a minute later: as read
    clock[0] = machine.FACTS_REREAD_S
    assert reader().logged_on_user == "user2"
    assert reads == [0.0, machine.FACTS_REREAD_S]


async def test_the_agent_sends_its_facts(app: FastAPI, tmp_path: Path, detail: Any):
    user = ["CONTOSO\\anna"]
    facts = DeviceFacts(
        hostname="LT-FIN-0042",
        os_version="Windows 11 Pro 24H2 (10.0.26100.2314)",
        model="Latitude 7440",
        manufacturer="Dell Inc.",
        serial_number="5CG1234XYZ",
        changing=lambda: ChangingFacts(user[0], ["10.20.30.41"], reboot_pending=True),
    )
    config = config_file.create(
        tmp_path / "agent" / "config.json",
        api_url="http://testserver/api",
        enrollment_secret=await create_secret(app),
    )

    async def no_updates() -> UpdateReport:
        return UpdateReport()

    transport = httpx.ASGITransport(app=app)
    async with AgentClient("http://testserver/api", transport=transport) as client:
        device = Agent(config, client, scanner=no_updates, facts=facts, rng=random.Random(7))
        await device.heartbeat()  # registers first
        shown = await detail(str(device.device_id))
        assert shown["logged_on_user"] == "CONTOSO\\anna"
        assert shown["ip_addresses"] == ["10.20.30.41"]
        assert (shown["model"], shown["manufacturer"]) == ("Latitude 7440", "Dell Inc.")
        assert shown["serial_number"] == "5CG1234XYZ"
        assert shown["reboot_pending_since"] is not None
        user[0] = ""  # anna logs off
        await device.heartbeat()
        assert (await detail(str(device.device_id)))["logged_on_user"] == ""


@pytest.fixture
async def detail(app: FastAPI) -> Any:
    """``GET /api/devices/{id}`` as a viewer."""
    await create_user(app, "reader", role="viewer")
    headers = {"Authorization": f"Bearer {await create_api_token(app, 'reader')}"}

    async def get(device_id: str) -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get(f"/api/devices/{device_id}", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    return get
