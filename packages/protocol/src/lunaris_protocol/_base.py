from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """Base of every wire body: unknown fields are refused, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)
