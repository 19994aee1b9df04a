"""Liveness and readiness probes for load balancers and orchestrators."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from lunaris_server.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(state: StateDep) -> dict[str, str] | JSONResponse:
    """The process can serve: its database answers."""
    try:
        await state.database.ping()
    except Exception as error:
        return JSONResponse(
            {"status": "unavailable", "database": type(error).__name__}, status_code=503
        )
    return {"status": "ok", "database": "ok"}
