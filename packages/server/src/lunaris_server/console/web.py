"""The console's Jinja environment, static files and the one ``render`` every page uses."""

import hashlib
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from lunaris_server.console import formatting
from lunaris_server.console.charts import bar_chart, legend, line_chart
from lunaris_server.console.csrf import SESSION_COOKIE, CsrfTokens
from lunaris_server.console.paging import url_with
from lunaris_server.web.state import AppState

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
LOGIN_NONCE_COOKIE = "lunaris_login"


class CachedStaticFiles(StaticFiles):
    """Static files are linked with a content hash (``?v=``), so browsers may keep them."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


class Console:
    """What every page needs: templates, CSRF tokens, and
    cache-busting static URLs."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.csrf = CsrfTokens(state.settings.session_secret())
        self.templates = Jinja2Templates(directory=TEMPLATES_DIR)
        self._static_versions = {
            path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in STATIC_DIR.iterdir()
            if path.is_file()
        }
        env = self.templates.env
        env.globals.update(
            static_url=self.static_url,
            url_with=url_with,
            bar_chart=bar_chart,
            line_chart=line_chart,
            legend=legend,
            heartbeat_interval_s=state.settings.heartbeat_interval_s,
            run_confirmation=formatting.run_confirmation,
        )
        env.filters.update(
            when=formatting.when,
            count=formatting.count,
            plural=formatting.plural,
            interval=formatting.interval,
        )

    def static_url(self, name: str) -> str:
        return f"/static/{name}?v={self._static_versions.get(name, '0')}"

    def csrf_binding(self, request: Request) -> str | None:
        """The session cookie (its random id) once logged in, the login nonce before."""
        return request.cookies.get(SESSION_COOKIE) or request.cookies.get(LOGIN_NONCE_COOKIE)

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        csrf_binding: str | None = None,
    ) -> Response:
        binding = csrf_binding or self.csrf_binding(request)
        now: datetime = self.state.clock()
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "user": getattr(request.state, "console_user", None),
                "csrf_token": self.csrf.token_for(binding) if binding else "",
                "now": now,
                "live_since": _received_at_ms(request),
                **(context or {}),
            },
            status_code=status_code,
        )
        # The same URL answers a whole page or (to htmx) a fragment: caches must tell them apart.
        response.headers["Vary"] = "HX-Request"
        response.headers["Cache-Control"] = "no-store"
        return response


def _received_at_ms(request: Request) -> int:
    """When the request arrived (epoch milliseconds): the page shows what had happened by
    then, and its live channel asks for what happened since."""
    received_at = getattr(request.state, "received_at", None)
    return int((received_at if isinstance(received_at, float) else time.time()) * 1000)


def setup_console(app: FastAPI, state: AppState) -> Console:
    console = Console(state)
    app.state.console = console
    app.mount("/static", CachedStaticFiles(directory=STATIC_DIR), name="static")
    return console


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console
