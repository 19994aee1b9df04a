"""The JSON API's error answer, declared in the OpenAPI document.

Every error under ``/api`` is ``{"error": {"code", "message", "details"?}}`` (written by the
handlers in app.py). Routers and routes list the statuses they can answer with
:func:`error_responses`, so the document says what a client really gets.
"""

from typing import Any

from pydantic import BaseModel, Field


class ErrorInfo(BaseModel):
    code: str = Field(description="stable, machine-readable: not_found, invalid_request, ...")
    message: str = Field(description="for people")
    details: Any = Field(default=None, description="more about this kind of error, if any")


class ErrorAnswer(BaseModel):
    error: ErrorInfo


_WHEN = {
    400: "The request body is not valid JSON.",
    401: "No credentials, or credentials the server does not accept.",
    403: "The credentials are valid but do not allow this.",
    404: "What the request names does not exist.",
    409: "The request conflicts with the current state; see the message.",
    413: "The request body is over the size limit.",
    422: "The request is malformed or its values are not acceptable.",
    429: "Too many attempts; retry after the Retry-After header's seconds.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a router or route that can answer with these error statuses."""
    return {status: {"model": ErrorAnswer, "description": _WHEN[status]} for status in statuses}


# The errors of every route that reads a JSON body (its parsing and size limit).
BODY_ERRORS = error_responses(400, 413, 422)
