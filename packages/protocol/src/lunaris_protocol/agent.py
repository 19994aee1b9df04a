"""Bodies the agent and the server exchange over REST under ``/api/agent``."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final
from uuid import UUID

from pydantic import Field, StringConstraints

from lunaris_protocol._base import WireModel, WireReply
from lunaris_protocol.commands import AgentCommand
from lunaris_protocol.facts import DeviceFactsFields
from lunaris_protocol.limits import (
    MAX_ERROR_CODE,
    MAX_HOSTNAME,
    MAX_IDENTIFIER,
    MAX_MESSAGE,
    MAX_NAME,
    MAX_SOURCE,
    MAX_UPDATES_PER_REPORT,
    MAX_VERSION,
)
from lunaris_protocol.scope import Scoped
from lunaris_protocol.tags import TagList
from lunaris_protocol.text import DISPLAY_TEXT, IDENTIFIER, MESSAGE_TEXT

Hostname = Annotated[str, StringConstraints(min_length=1, max_length=MAX_HOSTNAME), IDENTIFIER]
OsVersion = Annotated[str, StringConstraints(max_length=MAX_NAME), DISPLAY_TEXT]
AgentVersion = Annotated[str, StringConstraints(min_length=1, max_length=MAX_VERSION), IDENTIFIER]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER), IDENTIFIER]
Version = Annotated[str, StringConstraints(max_length=MAX_VERSION), IDENTIFIER]
PackageIdentifier = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER), IDENTIFIER
]
IntervalSeconds = Annotated[int, Field(ge=1, le=86_400)]
DEFAULT_INVENTORY_INTERVAL_S: Final = 6 * 3600
TIME_ZONE_PATTERN: Final = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
MAX_TIME_ZONE: Final = 64
TimeZoneName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TIME_ZONE, pattern=TIME_ZONE_PATTERN)
]
"""An IANA time zone name as the PC knows its own (``Europe/Berlin``); the server keeps one it
does not know as said, and treats it as none."""


class Capability(StrEnum):
    """What an agent can do beyond what every agent does: it lists these in its registration
    and heartbeats, and the server (and the device page) knows from them what each agent
    understands. Newer agents may list names this server does not know; they are kept."""

    EXACT_VERSIONS = "exact_versions"
    """Installs the version a command names (``RunUpdatesCommand.versions``)."""
    WINDOW_END = "window_end"
    """Starts no install after a command's ``window_ends_at``."""
    SELF_UPDATE = "self_update"
    """Takes ``UPDATE_AGENT`` commands (agents without it would refuse the whole heartbeat
    answer that held one)."""
    PER_USER = "per_user"
    """Also scans, lists and installs apps in each logged-on user's profile: rows with
    ``scope="user"`` come from it, and it installs a package where its last scan found it."""


MAX_CAPABILITIES: Final = 16
MAX_CAPABILITY: Final = 31
Capabilities = Annotated[
    list[
        Annotated[
            str,
            StringConstraints(
                min_length=1, max_length=MAX_CAPABILITY, pattern=r"^[a-z][a-z0-9_]*$"
            ),
        ]
    ],
    Field(max_length=MAX_CAPABILITIES),
]
"""Lower-case names (``exact_versions``). Null from agents built before capabilities existed:
they understand none of them."""


class RegisterRequest(DeviceFactsFields):
    device_id: UUID
    hostname: Hostname
    os_version: OsVersion
    agent_version: AgentVersion
    enrollment_secret: Secret
    device_token: Secret | None = None
    """The agent's current token, when it has one: proof that a known device id is its own."""
    registration_key: Secret | None = None
    """A random key the agent made and sends with every attempt until it is registered: an
    admin's approval of a re-enrolment admits the agent holding this key, nobody else."""
    tags: TagList | None = None
    """The tags in the agent's config (``berlin,finance``); null from agents that have none
    to say (older ones): the device's agent tags stay as they are."""
    capabilities: Capabilities | None = None
    time_zone: TimeZoneName | None = None
    """The PC's time zone: a policy's window "in each device's local time" opens by it."""
    booted_at: datetime | None = None
    """When the PC last started (to the second): a restart clears its "reboot pending"."""


class RegisterResponse(WireReply):
    device_token: str
    heartbeat_interval_s: IntervalSeconds
    scan_interval_s: IntervalSeconds
    inventory_interval_s: IntervalSeconds = DEFAULT_INVENTORY_INTERVAL_S
    """How often at most the agent lists everything installed (it also does after installs);
    absent from servers built before the inventory."""


class HeartbeatRequest(DeviceFactsFields):
    """A heartbeat may be empty; the optional fields update the device when they changed."""

    hostname: Hostname | None = None
    os_version: OsVersion | None = None
    agent_version: AgentVersion | None = None
    capabilities: Capabilities | None = None
    time_zone: TimeZoneName | None = None
    """Sent with every heartbeat: a laptop that travels moves its windows with it."""
    booted_at: datetime | None = None


class NewIdentity(WireReply):
    """This PC shares its identity with another (a disk image cloned after the agent
    enrolled) and an admin split them: from now on it is this device, with this token."""

    device_id: UUID
    device_token: str


class HeartbeatResponse(WireReply):
    heartbeat_interval_s: IntervalSeconds
    scan_interval_s: IntervalSeconds
    inventory_interval_s: IntervalSeconds = DEFAULT_INVENTORY_INTERVAL_S
    """How often at most the agent lists everything installed (it also does after installs);
    absent from servers built before the inventory."""
    commands: list[AgentCommand] = Field(default_factory=list)
    """Commands waiting for this device, handed over when its socket is not open."""
    new_identity: NewIdentity | None = None
    """Set only for the PC an admin split off a cloned identity (no commands come with it):
    the agent keeps the new id and token and speaks with them from its next request on."""


class UpdateItem(Scoped):
    """One row of ``winget upgrade``: an update waiting on the device."""

    package_identifier: PackageIdentifier
    name: Annotated[str, StringConstraints(max_length=MAX_NAME), DISPLAY_TEXT]
    installed_version: Version
    available_version: Version
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE), IDENTIFIER] | None = None
    explicit_targeting: bool = False
    """winget lists this update but upgrades it only when asked for it by id."""
    truncated: bool = False
    """winget cut the id with ``…``: shown, but never usable for ``winget upgrade --id``."""


class ScanError(WireModel):
    code: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_ERROR_CODE), IDENTIFIER]
        | None
    ) = None
    """winget's HRESULT (``0x8A15000F``), or a name such as ``timeout``; null when none."""
    message: Annotated[str, StringConstraints(max_length=MAX_MESSAGE), MESSAGE_TEXT]


class UpdateReport(WireModel):
    """The full list winget shows now; the server works out what changed."""

    updates: list[UpdateItem] = Field(default_factory=list, max_length=MAX_UPDATES_PER_REPORT)
    scan_error: ScanError | None = None
    tags: TagList | None = None
    """The tags in the agent's config now, so a changed config shows at the next scan; null
    from agents that have none to say (older ones): the device's agent tags stay as they are."""


class UpdateReportResponse(WireReply):
    added: int
    changed: int
    removed: int
    unchanged: int
