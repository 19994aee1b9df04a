"""What an agent says about the PC besides its name and Windows version: who is logged on at
its console, its addresses, its hardware, and whether Windows waits for a restart.

Every field is optional (null: "not said", the device keeps what it had), so agents built
before these facts and servers built before them keep speaking to each other.
"""

import ipaddress
from typing import Annotated, Final

from pydantic import AfterValidator, Field, StringConstraints

from lunaris_protocol._base import WireModel
from lunaris_protocol.text import DISPLAY_TEXT, IDENTIFIER

MAX_LOGGED_ON_USER: Final = 256
"""``DOMAIN\\user``: a NetBIOS or DNS domain and a user name."""
MAX_HARDWARE_TEXT: Final = 128
"""The firmware's model, manufacturer and serial number strings."""
MAX_IP_ADDRESSES: Final = 16
MAX_IP_ADDRESS: Final = 45
"""The longest text of an IPv6 address (``ffff:...:255.255.255.255``)."""


def check_ip_address(text: str) -> str:
    """``text`` as ``ipaddress`` writes it (``2001:db8::1``); ValueError if it is no address.
    A scope (``fe80::1%12``) is refused: it names an interface of that PC only."""
    if "%" in text:
        raise ValueError("must be an address without a scope (%)")
    return str(ipaddress.ip_address(text))


LoggedOnUser = Annotated[str, StringConstraints(max_length=MAX_LOGGED_ON_USER), IDENTIFIER]
HardwareName = Annotated[str, StringConstraints(max_length=MAX_HARDWARE_TEXT), DISPLAY_TEXT]
SerialNumber = Annotated[str, StringConstraints(max_length=MAX_HARDWARE_TEXT), IDENTIFIER]
IpAddress = Annotated[
    str,
    StringConstraints(min_length=2, max_length=MAX_IP_ADDRESS),
    AfterValidator(check_ip_address),
]
IpAddresses = Annotated[list[IpAddress], Field(max_length=MAX_IP_ADDRESSES)]


class DeviceFactsFields(WireModel):
    """The facts a registration and every heartbeat may carry."""

    logged_on_user: LoggedOnUser | None = None
    """Who is logged on at the PC's console (``CONTOSO\\anna``); empty when nobody is."""
    ip_addresses: IpAddresses | None = None
    """The PC's own addresses (not loopback), as it sees them: behind NAT these are not the
    address the server sees it speak from."""
    model: HardwareName | None = None
    manufacturer: HardwareName | None = None
    serial_number: SerialNumber | None = None
    reboot_pending: bool | None = None
    """Windows waits for a restart (Component Based Servicing, Windows Update, or file
    renames at the next start): the device is "reboot pending" until it next starts."""
