"""What an htmx request asks for."""

from starlette.requests import Request


def wants_fragment(request: Request) -> bool:
    """htmx swaps a fragment in; a history restore (back after a cache miss) needs the page."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )
