"""Domain errors, raised by services and turned into HTTP answers in one place."""

import math
from typing import Any

from lunaris_protocol.text import check_identifier


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def headers(self) -> dict[str, str] | None:
        """Extra response headers the answer must carry."""
        return None


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid_input"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class TooManyRequests(DomainError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(message, details={"retry_after_s": self.retry_after_s})

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


def checked_identifier(text: str, what: str) -> str:
    """``text``, or InvalidInput if it holds control or format characters (see
    ``lunaris_protocol.text``): for names people give that do not come through a model."""
    try:
        return check_identifier(text)
    except ValueError as error:
        raise InvalidInput(f"{what} {error}") from None
