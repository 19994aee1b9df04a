"""A console form read into the model its JSON API takes, so both refuse the same things,
and a form's outcome: saved and redirected, or its page again saying why not."""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.responses import RedirectResponse, Response

from lunaris_server.core.errors import DomainError, InvalidInput
from lunaris_server.web.unit_of_work import UnitOfWork

Model = TypeVar("Model", bound=BaseModel)
Done = TypeVar("Done")


def parsed(model: type[Model], data: dict[str, object], labels: dict[str, str]) -> Model:
    """``data`` as ``model``, or InvalidInput saying, in the form's words, what is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for problem in error.errors(include_url=False, include_input=False):
            field = str(problem["loc"][0]) if problem["loc"] else ""
            message = str(problem["msg"]).removeprefix("Value error, ")
            problems.append(f"{labels.get(field, field)}: {message}" if field else message)
        raise InvalidInput("; ".join(problems[:5])) from None


async def saved(
    work: UnitOfWork,
    attempt: Awaitable[Done],
    *,
    then: Callable[[Done], str],
    refused: Callable[[DomainError], Awaitable[Response]],
) -> Response:
    """A form's outcome (post/redirect/get): the service's ``attempt`` committed and a 303 to
    ``then(result)``; or, when the service refused it, ``refused(error)``: the form's page
    again with what was entered and why, and nothing changed."""
    try:
        result = await attempt
    except DomainError as error:
        return await refused(error)
    await work.commit()
    return RedirectResponse(then(result), status_code=303)
