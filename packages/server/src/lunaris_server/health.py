"""Liveness and readiness probes for load balancers and orchestrators."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lunaris_server.deps import StateDep

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
