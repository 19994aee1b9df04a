"""Liveness and readiness probes for load balancers and orchestrators."""

import asyncio
import uuid
from typing import Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from lunaris_server.web.deps import StateDep
from lunaris_server.web.middleware import incoming_request_id, send_json

router = APIRouter(tags=["health"])

READY_TIMEOUT_S = 5.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={503: {"description": 'The database does not answer: {"status": "unavailable"}'}},
)
async def readyz(state: StateDep) -> dict[str, str] | JSONResponse:
    """The process can serve: its database answers."""
    try:
        # A probe must answer within its caller's timeout, not the pool's 60 s.
        await asyncio.wait_for(state.database.ping(), READY_TIMEOUT_S)
    except Exception as error:
        return JSONResponse(
            {"status": "unavailable", "database": type(error).__name__}, status_code=503
        )
    return {"status": "ok", "database": "ok"}


LIVENESS_PATH: Final = "/healthz"
_ALIVE: Final = b'{"status":"ok"}'


class LivenessFastPath:
    """``GET /healthz`` answered in front of the framework, like the heartbeat: a probe asks
    only whether the process answers, and orchestrators ask often. Its cost is also the
    server's floor per request, which the throughput benchmarks use as their ceiling. The
    route above stays, for the API document and for anything that calls the framework
    directly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == LIVENESS_PATH and scope["method"] == "GET":
            request_id = incoming_request_id(scope) or uuid.uuid4().hex
            await send_json(send, 200, _ALIVE, [(b"x-request-id", request_id.encode())])
            return
        await self.app(scope, receive, send)
