"""What an htmx request asks for."""

from starlette.requests import Request

from lunaris_server.core.errors import DomainError, NotFound


def wants_fragment(request: Request) -> bool:
    """htmx swaps a fragment in; a history restore (back after a cache miss) needs the page."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def refusal_for_fragment(request: Request, refused: DomainError) -> str:
    """What to say, in the fragment an htmx form swaps in, about a refused action (htmx swaps
    only 2xx answers, so the fragment carries the reason). A plain form post, or a thing
    that does not exist, gets the error page with its status instead: this raises it."""
    if not wants_fragment(request) or isinstance(refused, NotFound):
        raise refused
    return refused.message
