"""Response headers that tell browsers how to treat the console.

The console runs no inline script and no inline style (htmx and live.js are files served by
the server, htmx's own indicator styles are turned off in base.html), so the policy can
allow only this origin. The interactive API docs are the one exception: Swagger UI (served
by this server too, from a pinned package: api_docs.py) sets inline styles, so that page's
policy allows them, and still no other origin: the explorer needs no CDN, and a request to
one is refused by the browser. HSTS is sent only in prod, where the server sits behind TLS;
sent from a development server on plain HTTP it would pin a browser to HTTPS for that host.
"""

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_PATHS: Final = frozenset({"/api/docs"})
HSTS: Final = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            *([HSTS] if hsts else []),
        ]
        self._console = [(b"content-security-policy", CONSOLE_POLICY.encode()), *common]
        self._docs = [(b"content-security-policy", DOCS_POLICY.encode()), *common]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._docs if scope["path"] in DOCS_PATHS else self._console

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
