"""Unknown query parameters are refused on every ``/api`` route.

A misspelt filter that is ignored answers with every row, and nobody notices, so a parameter
the route does not declare is a 422 ``invalid_request`` naming it. The app runs this for
every route (``create_app``'s dependencies), and the declared parameters are read from the
route's own dependency tree, the same one that builds the OpenAPI document: a new route
cannot forget the check, and the document stays true.
"""

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection


def declared_query_params(dependant: Dependant) -> frozenset[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= declared_query_params(sub)
    return frozenset(names)


async def refuse_unknown_query_params(request: HTTPConnection) -> None:
    # HTTPConnection: the app runs this for its WebSocket routes too (not under /api).
    if not request.scope.get("query_string") or not request.url.path.startswith("/api/"):
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    declared = declared_query_params(dependant)  # a short walk, for requests with a query
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in declared]
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": "unknown query parameter",
                    "input": request.query_params[name],
                }
                for name in unknown
            ]
        )
