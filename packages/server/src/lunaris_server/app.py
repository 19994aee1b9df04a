"""The application factory: ``create_app(settings)``; nothing runs at import."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lunaris_protocol import MAX_INSTALLER_BYTES
from lunaris_server import __version__
from lunaris_server.accounts import api as accounts_api
from lunaris_server.accounts import audit_api, audit_views, session_views
from lunaris_server.accounts import views as accounts_views
from lunaris_server.accounts.session_check import check_once as check_sessions
from lunaris_server.agent_api.heartbeat import HEARTBEAT_PATH, HeartbeatFastPath
from lunaris_server.agent_api.routes import router as agent_router
from lunaris_server.agent_api.socket import router as agent_socket_router
from lunaris_server.agents import api as agents_api
from lunaris_server.commands import agent_updates_api, deployments_api, deployments_views
from lunaris_server.commands import api as commands_api
from lunaris_server.commands import sweeper as command_sweeper
from lunaris_server.commands import views as commands_views
from lunaris_server.commands.delivery import CommandDelivery
from lunaris_server.commands.lifecycle import CommandsFollowDevices
from lunaris_server.compliance import api as compliance_api
from lunaris_server.compliance import history as compliance_history
from lunaris_server.compliance import views as compliance_views
from lunaris_server.compliance.figures_cache import FiguresCache
from lunaris_server.console.api_docs import mount_swagger_ui
from lunaris_server.console.api_docs import router as api_docs_router
from lunaris_server.console.errors import error_page, wants_html
from lunaris_server.console.web import setup_console
from lunaris_server.core.clock import Clock, utc_now
from lunaris_server.core.errors import DomainError
from lunaris_server.core.settings import Environment, Settings
from lunaris_server.core.tasks import run_every
from lunaris_server.dashboard import device_page
from lunaris_server.dashboard import views as dashboard_views
from lunaris_server.dashboard.figures import fleet_figures
from lunaris_server.db import Database
from lunaris_server.devices import api as devices_api
from lunaris_server.devices import groups_api, groups_views, tags_api
from lunaris_server.devices import identity_api as device_identity_api
from lunaris_server.devices import identity_views as device_identity_views
from lunaris_server.devices import sweeper as device_sweeper
from lunaris_server.devices import views as devices_views
from lunaris_server.devices.cache import DeviceCache
from lunaris_server.devices.last_seen import LastSeenWriter
from lunaris_server.devices.lifecycle import DeviceLifecycle
from lunaris_server.enrollment import api as enrollment_api
from lunaris_server.enrollment import views as enrollment_views
from lunaris_server.live import stats as live_stats
from lunaris_server.live.console_socket import router as console_socket_router
from lunaris_server.policies import agent_targets_api, agent_versions_views, scheduler
from lunaris_server.policies import api as policies_api
from lunaris_server.policies import views as policies_views
from lunaris_server.realtime.bus import make_bus
from lunaris_server.realtime.service import Realtime
from lunaris_server.software import api as software_api
from lunaris_server.software import views as software_views
from lunaris_server.software.lifecycle import SoftwareFollowsDevices
from lunaris_server.updates import api as updates_api
from lunaris_server.updates import rules_api, rules_views
from lunaris_server.updates import views as updates_views
from lunaris_server.updates.lifecycle import UpdatesFollowDevices
from lunaris_server.web.api_errors import error_responses
from lunaris_server.web.health import LIVENESS_PATH, LivenessFastPath
from lunaris_server.web.health import router as health_router
from lunaris_server.web.metrics import MetricsMiddleware, ServerMetrics
from lunaris_server.web.metrics import router as metrics_router
from lunaris_server.web.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from lunaris_server.web.query_params import refuse_unknown_query_params
from lunaris_server.web.security_headers import SecurityHeadersMiddleware
from lunaris_server.web.state import AppState
from lunaris_server.web.throttle import LoginThrottle, RegistrationThrottle

log = structlog.get_logger("lunaris.app")


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    settings = settings or Settings()
    database = Database(
        settings.resolved_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    realtime = Realtime(
        make_bus(settings.resolved_database_url),
        console_queue_size=settings.console_queue_size,
    )
    state = AppState(
        settings=settings,
        database=database,
        realtime=realtime,
        login_throttle=LoginThrottle(failures_per_minute=settings.login_failures_per_minute),
        registration_throttle=RegistrationThrottle(
            per_secret_per_minute=settings.register_per_secret_per_minute
        ),
        clock=clock,
    )
    last_seen = LastSeenWriter(database)
    device_cache = DeviceCache(
        ttl_s=settings.device_cache_ttl_s, process_id=realtime.bus.process_id
    )
    delivery = CommandDelivery(state)
    lifecycle = DeviceLifecycle(
        [UpdatesFollowDevices(), SoftwareFollowsDevices(), CommandsFollowDevices()]
    )
    figures_cache = FiguresCache(ttl_s=settings.compliance_cache_s)
    for part in (last_seen, device_cache, delivery, lifecycle, figures_cache):
        state.add(part)
    state.realtime.bus.subscribe(state.part(DeviceCache).on_bus_message)
    state.realtime.on_local_event(state.part(DeviceCache).on_local_event)
    state.realtime.bus.subscribe(state.part(CommandDelivery).on_bus_message)
    server_metrics = ServerMetrics(state, fleet_figures)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.realtime.start()
        background = [
            asyncio.create_task(job, name=name)
            for name, job in _periodic_jobs(state, server_metrics).items()
        ]
        log.info(
            "server started",
            env=settings.env.value,
            database=database.engine.url.drivername,
            process=state.realtime.bus.process_id,
        )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await state.part(CommandDelivery).stop()
            with contextlib.suppress(Exception):
                await state.part(LastSeenWriter).flush()  # the last second of heartbeats
            await state.realtime.stop()
            await database.dispose()

    app = LunarisApp(
        title="Lunaris",
        version=__version__,
        summary="Application updates waiting across a fleet of Windows PCs.",
        docs_url=None,  # api_docs.py: Swagger UI without an inline script
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
        dependencies=[Depends(refuse_unknown_query_params)],
        responses=error_responses(422),
    )
    app.state.lunaris = state
    app.state.metrics = server_metrics
    for router in (
        agent_router,
        tags_api.router,
        devices_api.router,
        groups_api.router,
        groups_views.router,
        device_identity_api.router,
        updates_api.router,
        software_api.router,
        rules_api.router,
        policies_api.router,
        compliance_api.router,
        commands_api.router,
        deployments_api.router,
        enrollment_api.router,
        agents_api.router,
        agent_updates_api.router,
        agent_targets_api.router,
        accounts_api.router,
        audit_api.router,
        console_socket_router,
        agent_socket_router,
        live_stats.router,
        health_router,
        metrics_router,
        api_docs_router,
        accounts_views.router,
        session_views.router,
        dashboard_views.router,
        devices_views.router,
        device_page.router,
        device_identity_views.router,
        updates_views.router,
        software_views.router,
        rules_views.router,
        policies_views.router,
        compliance_views.router,
        commands_views.router,
        deployments_views.router,
        enrollment_views.router,
        agent_versions_views.router,
        audit_views.router,
    ):
        app.include_router(router)
    setup_console(app, state)
    mount_swagger_ui(app)
    _install_error_handlers(app)

    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        large_paths={"/api/agent/update-report": settings.max_report_bytes},
        large_prefixes={
            "/api/agent-versions/": MAX_INSTALLER_BYTES,
            "/settings/agent-versions": MAX_INSTALLER_BYTES,
        },
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.env is Environment.PROD)
    app.add_middleware(RequestContextMiddleware)
    # In front of the framework: the plain heartbeat skips all of it (see agent_api/heartbeat.py),
    # and the metrics count and time it with everything else.
    app.front = MetricsMiddleware(
        LivenessFastPath(HeartbeatFastPath(app.framework, max_body_bytes=settings.max_body_bytes)),
        early_paths={HEARTBEAT_PATH, LIVENESS_PATH},
    )
    return app


def _periodic_jobs(
    state: AppState, server_metrics: ServerMetrics
) -> dict[str, Coroutine[None, None, None]]:
    """Every job a process runs in the background, by task name (see core/tasks.py)."""
    settings = state.settings
    command_sweep_s = settings.command_sweep_interval_s
    last_seen = state.part(LastSeenWriter)
    jobs = {
        "sweeper": run_every(
            settings.offline_sweep_interval_s,
            lambda: device_sweeper.sweep_once(state),
            what="offline sweep",
        ),
        "last-seen-writer": run_every(
            last_seen.interval_s, last_seen.flush, what="writing heartbeat times", at_once=False
        ),
        "command-sweeper": run_every(
            lambda: command_sweeper.next_sweep_in(state, command_sweep_s),
            lambda: command_sweeper.sweep_once(state),
            what="command sweep",
        ),
        "metrics-refresher": server_metrics.run_refresher(),
        "session-check": run_every(
            settings.session_check_interval_s,
            lambda: check_sessions(state),
            what="console session check",
            at_once=False,
        ),
    }
    if settings.scheduler_enabled:
        jobs["scheduler"] = run_every(
            settings.scheduler_interval_s,
            lambda: scheduler.tick_once(state),
            what="scheduler tick",
            at_once=False,
        )
        # Once a day in effect: each run finds today's snapshot written (one indexed read)
        # but the first after midnight UTC, in whichever process runs first.
        jobs["compliance-snapshot"] = run_every(
            settings.scheduler_interval_s,
            lambda: compliance_history.snapshot_once(state),
            what="compliance snapshot",
        )
    return jobs


class LunarisApp(FastAPI):
    """FastAPI with ``front`` answering first: ASGI middleware that must run before even
    FastAPI's own wrappers (its error and body-limit layers), then hand on to
    :meth:`framework`."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await self.framework(scope, receive, send)
            return
        scope["app"] = self  # as the framework sets it, for whatever answers in front
        await self.front(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def _error(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error}, status_code=status, headers=headers)


# SQLSTATEs of text the database cannot represent: a NUL character, or one outside the encoding.
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


def _install_error_handlers(app: FastAPI) -> None:
    """Every API error answers ``{"error": {"code", "message", "details"?}}``; a browser on a
    console page gets an error page instead (or the login page, when not logged in)."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> Response:
        if wants_html(request):
            page = error_page(request, error.status_code, error.message)
        else:
            page = _error(error.status_code, error.code, error.message, error.details)
        page.headers.update(error.headers or {})
        return page

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        problems = error.errors()
        if wants_html(request):
            return error_page(request, 400, "The address has a parameter this page cannot use.")
        if any(p.get("type") == "json_invalid" for p in problems):
            return _error(400, "malformed_json", "the request body is not valid JSON")
        details = [
            {"loc": list(p.get("loc", ())), "msg": p.get("msg", ""), "type": p.get("type", "")}
            for p in problems
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        message = f"{where}: {first['msg']}" if where else str(first["msg"])
        return _error(422, "invalid_request", message, details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if wants_html(request):
            return error_page(request, error.status_code, str(error.detail))
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            error.status_code, "http_error"
        )
        return _error(error.status_code, code, str(error.detail))

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, _error_: IntegrityError) -> JSONResponse:
        # Two requests raced to create the same thing; the loser may simply retry.
        return _error(409, "conflict", "the request conflicts with a concurrent change; retry")

    @app.exception_handler(DBAPIError)
    async def unstorable_text(request: Request, error: DBAPIError) -> Response:
        # PostgreSQL text cannot hold U+0000 (SQLite can): a request carrying one is invalid
        # input there, not a server error. Any other database error stays a 500.
        if getattr(error.orig, "sqlstate", None) not in _UNSTORABLE_TEXT:
            raise error
        message = "the request contains a character the database cannot store (U+0000)"
        if wants_html(request):
            return error_page(request, 400, message)
        return _error(422, "invalid_request", message)
