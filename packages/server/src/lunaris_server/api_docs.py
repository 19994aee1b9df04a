"""The API explorer at ``/api/docs``: Swagger UI started by a static script, so its page's
policy needs no inline script. The page carries the session's CSRF token in a meta tag,
which the script adds to the explorer's writes ("Try it out" as a logged-in user)."""

from fastapi import APIRouter, Request
from starlette.responses import Response

from lunaris_server.console.web import get_console

router = APIRouter()

SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"


@router.get("/api/docs", include_in_schema=False)
async def api_docs(request: Request) -> Response:
    return get_console(request).render(request, "api_docs.html", {"swagger_ui": SWAGGER_UI})
