"""Commands the server hands to an agent."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from lunaris_protocol._base import WireReply
from lunaris_protocol.limits import MAX_IDENTIFIER, MAX_PACKAGES_PER_COMMAND

CommandKind = Literal["RUN_UPDATES"]


class RunUpdatesCommand(WireReply):
    """Install updates on one device: the listed packages, or every one available (``None``)."""

    command_id: UUID
    """Idempotency key: an agent that receives the same id twice runs it once."""
    kind: Literal["RUN_UPDATES"] = "RUN_UPDATES"
    packages: (
        Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_IDENTIFIER)]],
            Field(min_length=1, max_length=MAX_PACKAGES_PER_COMMAND),
        ]
        | None
    ) = None
    expires_at: datetime
