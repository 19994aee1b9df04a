"""One request's transaction as one object: the session every service of the request works
in (the one ``SessionDep`` gives: FastAPI hands a request one of each dependency), what those
services announce as they go, and their after-commit work. A route ends it with
``await work.commit()``; services flush and never commit (see realtime/outbox.py)."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.realtime import outbox
from lunaris_server.web.deps import SessionDep, StateDep
from lunaris_server.web.state import AppState


class UnitOfWork:
    def __init__(self, session: AsyncSession, state: AppState) -> None:
        self.session = session
        self._state = state

    async def commit(self) -> None:
        """Commits, then publishes what was announced and runs the after-commit work."""
        await outbox.commit(self.session, self._state)


async def get_unit_of_work(session: SessionDep, state: StateDep) -> UnitOfWork:
    return UnitOfWork(session, state)


WorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]
