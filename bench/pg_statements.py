"""Database time read server-side from PostgreSQL's ``pg_stat_statements``.

The extension must be preloaded (``shared_preload_libraries = 'pg_stat_statements'``); the
bench creates it in its database when it is. Each measurement takes the counters of the
bench's database before and after, so other databases' work on the same server is left out,
and so are the statements that read the counters. Only top-level statements count: the time
of a statement's triggers (a foreign key's check) is in its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from lunaris_server.db.engine import asyncpg_dsn

_READ = """
    SELECT s.queryid, s.calls, s.total_exec_time, s.rows, s.query
    FROM pg_stat_statements s
    JOIN pg_database d ON d.oid = s.dbid
    WHERE d.datname = current_database() AND s.toplevel
      AND s.query NOT LIKE '%pg_stat_statements%'
"""


@dataclass(frozen=True, slots=True)
class Statement:
    query: str
    calls: int
    ms: float
    rows: int


@dataclass(slots=True)
class Measured:
    ms: float = 0.0
    calls: int = 0
    statements: list[Statement] = field(default_factory=list)
    """Each statement's share, most expensive first."""

    def top(self, count: int) -> list[Statement]:
        return self.statements[:count]


class StatementStats:
    """Counters of one database; ``None`` from ``open`` when the server has no
    pg_stat_statements loaded."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._before: dict[int, tuple[int, float, int]] = {}

    @classmethod
    async def open(cls, url: str) -> StatementStats | None:
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await connection.fetch(_READ + " LIMIT 1")
        except (asyncpg.PostgresError, OSError):
            await connection.close()
            return None
        return cls(connection)

    async def _read(self) -> dict[int, tuple[int, float, int, str]]:
        return {
            row["queryid"]: (row["calls"], row["total_exec_time"], row["rows"], row["query"])
            for row in await self._connection.fetch(_READ)
        }

    async def start(self) -> None:
        self._before = {key: value[:3] for key, value in (await self._read()).items()}

    async def take(self) -> Measured:
        """What ran since ``start`` (or the last ``take``)."""
        now = await self._read()
        measured = Measured()
        for key, (calls, ms, rows, query) in now.items():
            calls0, ms0, rows0 = self._before.get(key, (0, 0.0, 0))
            if calls > calls0:
                measured.statements.append(Statement(query, calls - calls0, ms - ms0, rows - rows0))
        measured.statements.sort(key=lambda s: s.ms, reverse=True)
        measured.ms = sum(s.ms for s in measured.statements)
        measured.calls = sum(s.calls for s in measured.statements)
        self._before = {key: value[:3] for key, value in now.items()}
        return measured

    async def close(self) -> None:
        await self._connection.close()
