"""Errors as pages for people: the JSON API keeps its JSON, a browser gets HTML."""

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lunaris_server.console.web import get_console

_TITLES = {
    400: "That request did not make sense",
    403: "You are not allowed to do that",
    404: "Nothing here",
    405: "Not like that",
    409: "That changed meanwhile",
    413: "That was too large",
    422: "Please check what you entered",
}


def wants_html(request: Request) -> bool:
    """API and socket paths always answer JSON; elsewhere, anyone not asking for JSON gets
    a page (browsers ask for text/html, htmx for anything)."""
    path = request.url.path
    if path == "/api" or path.startswith(("/api/", "/ws/")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or "application/json" not in accept


def login_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" + (f"?{urlencode({'next': here})}" if here not in ("/", "/login") else "")
    if request.headers.get("hx-request"):
        # htmx follows this header with a full page load, instead of swapping a login page in.
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def error_page(request: Request, status: int, message: str) -> Response:
    if status == 401:
        return login_redirect(request)
    return get_console(request).render(
        request,
        "errors/error.html",
        {
            "status": status,
            "title": _TITLES.get(status, "Something went wrong"),
            "message": message,
        },
        status_code=status,
    )
