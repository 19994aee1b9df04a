"""The ``scope`` and ``user`` of a waiting update or an installed app, as the API shows
them (stored as ``scope`` and ``user_account``, empty for the machine's rows)."""

from pydantic import BaseModel, Field, field_validator

from lunaris_protocol import Scope


class ScopedOut(BaseModel):
    scope: Scope = "machine"
    """``machine``, or ``user``: installed into ``user``'s profile."""
    user: str | None = Field(default=None, validation_alias="user_account")
    """The account (``DOMAIN\\\\name``) for ``scope="user"``."""

    @field_validator("user", mode="before")
    @classmethod
    def _none_for_the_machine(cls, value: object) -> object:
        return value or None
