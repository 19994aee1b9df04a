from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A body the server receives: unknown fields are refused, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WireReply(BaseModel):
    """A body the server sends: unknown fields are ignored, so a newer server can add fields
    without breaking agents and consoles already deployed."""

    model_config = ConfigDict(extra="ignore", frozen=True)
