"""The device facts a registration and a heartbeat may carry: optional, bounded, and
addresses that are addresses."""

import pytest
from pydantic import ValidationError

from lunaris_protocol import HeartbeatRequest, RegisterRequest
from lunaris_protocol.facts import MAX_HARDWARE_TEXT, MAX_IP_ADDRESSES, MAX_LOGGED_ON_USER

REGISTRATION = {
    "device_id": "0b5c9d1e-3f2a-4c6b-9e8d-7a6b5c4d3e2f",
    "hostname": "LT-FIN-0042",
    "os_version": "Windows 11",
    "agent_version": "0.2.0",
    "enrollment_secret": "lne_secret",
}


def test_the_facts_are_optional_and_default_to_not_said():
    heartbeat = HeartbeatRequest()
    assert heartbeat.logged_on_user is None
    assert heartbeat.ip_addresses is None
    assert heartbeat.model is heartbeat.manufacturer is heartbeat.serial_number is None
    assert heartbeat.reboot_pending is None
    assert RegisterRequest.model_validate(REGISTRATION).reboot_pending is None


def test_addresses_are_written_as_ipaddress_writes_them():
    said = HeartbeatRequest(ip_addresses=["10.0.0.7", "2001:DB8:0::1"], logged_on_user="")
    assert said.ip_addresses == ["10.0.0.7", "2001:db8::1"]
    assert said.logged_on_user == ""  # nobody is logged on


@pytest.mark.parametrize(
    "bad",
    [
        {"ip_addresses": ["10.0.0.300"]},
        {"ip_addresses": ["not an address"]},
        {"ip_addresses": ["fe80::1%12"]},
        {"ip_addresses": ["10.0.0.1 "]},
        {"ip_addresses": ["10.0.0.1,10.0.0.2"]},
        {"ip_addresses": [f"10.0.0.{n}" for n in range(MAX_IP_ADDRESSES + 1)]},
        {"logged_on_user": "x" * (MAX_LOGGED_ON_USER + 1)},
        {"logged_on_user": "CONTOSO\\anna\u202e"},
        {"logged_on_user": "CONTOSO\\anna\x00"},
        {"model": "m" * (MAX_HARDWARE_TEXT + 1)},
        {"manufacturer": "Dell\x07"},
        {"serial_number": "5CG\u200b123"},
        {"serial_number": "s" * (MAX_HARDWARE_TEXT + 1)},
        {"reboot_pending": "maybe"},
    ],
)
def test_facts_out_of_bounds_are_refused(bad: dict[str, object]):
    with pytest.raises(ValidationError):
        HeartbeatRequest.model_validate(bad)
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate({**REGISTRATION, **bad})


def test_facts_at_the_bounds_are_accepted():
    said = HeartbeatRequest(
        logged_on_user="u" * MAX_LOGGED_ON_USER,
        ip_addresses=[f"10.0.0.{n}" for n in range(MAX_IP_ADDRESSES)],
        model="m" * MAX_HARDWARE_TEXT,
        manufacturer="Hersteller\u200d GmbH",  # display text may keep format characters
        serial_number="s" * MAX_HARDWARE_TEXT,
        reboot_pending=True,
    )
    assert said.ip_addresses is not None
    assert len(said.ip_addresses) == MAX_IP_ADDRESSES
