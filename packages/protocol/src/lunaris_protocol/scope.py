"""Where winget found a package: installed for the whole machine, or into one user's
profile (winget running as SYSTEM does not see those; the agent runs it again in each
logged-on user's session). Optional on the wire: rows without it are the machine's, as every
agent before per-user scans sent them."""

from typing import Annotated, Literal, Self

from pydantic import StringConstraints, model_validator

from lunaris_protocol._base import WireModel
from lunaris_protocol.text import DISPLAY_TEXT

MAX_ACCOUNT = 256
Scope = Literal["machine", "user"]
UserAccount = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ACCOUNT), DISPLAY_TEXT]
"""The Windows account, as ``DOMAIN\\name`` (``AzureAD\\ada``, ``PC-01\\kiosk``)."""


class Scoped(WireModel):
    """The ``scope`` and ``user`` fields a row of ``winget upgrade`` or ``winget list`` has."""

    scope: Scope = "machine"
    user: UserAccount | None = None
    """For ``scope="user"``: whose profile the package is installed into."""

    @model_validator(mode="after")
    def _user_with_user_scope(self) -> Self:
        if (self.scope == "user") != (self.user is not None):
            raise ValueError('a row has a user exactly when its scope is "user"')
        return self
