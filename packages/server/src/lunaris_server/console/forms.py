"""A console form read into the model its JSON API takes, so both refuse the same things."""

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from lunaris_server.core.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)


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
