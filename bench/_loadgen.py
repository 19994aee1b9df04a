"""A lean open-loop HTTP/1.1 load generator.

httpx spends about as much CPU per request as the server under test, which on a 2-core
machine would make the generator the bottleneck. This one keeps persistent connections,
sends pre-encoded requests and reads just enough of each response (status line and
Content-Length) to know it arrived: a few tens of microseconds per request.

Open loop: request ``i`` is due at ``start + i / rate`` whatever happened before, and its
latency counts from that moment, so a server that falls behind cannot hide it (no
coordinated omission). Requests that find every connection busy wait for one, and that
wait is part of their latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def post_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


def get_request(host: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join([*lines, "", ""])).encode()


@dataclass
class LoadResult:
    latencies: list[tuple[int, float]] = field(default_factory=list)
    """(request index, latency in ms) of every answered request."""
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    sent: int = 0
    elapsed_s: float = 0.0


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


async def open_loop(
    host: str,
    port: int,
    *,
    rate: float,
    duration_s: float,
    request_for: Callable[[int], bytes],
    connections: int = 64,
    start_at: float | None = None,
) -> LoadResult:
    """Sends ``rate * duration_s`` requests (``request_for(i)`` makes the i-th)."""
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    # No more connections than a second's requests: one left idle longer than the server's
    # keep-alive (5 s) is closed by it, and the next request on it would count as an error.
    for _ in range(min(connections, max(2, int(rate)))):
        reader, writer = await asyncio.open_connection(host, port)
        pool.put_nowait(_Connection(reader, writer))
    result = LoadResult()
    start = start_at if start_at is not None else time.time() + 0.2
    total = int(rate * duration_s)

    async def one(index: int, due: float) -> None:
        connection = await pool.get()
        try:
            status = await connection.exchange(request_for(index))
        except (OSError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            result.errors += 1
            reader, writer = await asyncio.open_connection(host, port)
            connection = _Connection(reader, writer)
            return
        finally:
            pool.put_nowait(connection)
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.latencies.append((index, (time.time() - due) * 1000))

    tasks = []
    for index in range(total):
        due = start + index / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    result.sent = total
    result.elapsed_s = time.time() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    return result


async def closed_loop(host: str, port: int, *, request: bytes, count: int) -> LoadResult:
    """Sends ``request`` ``count`` times, one after another on one connection: each latency
    is the server's whole answer time, with nothing queued in front of it."""
    reader, writer = await asyncio.open_connection(host, port)
    connection = _Connection(reader, writer)
    result = LoadResult()
    started = time.time()
    try:
        for index in range(count):
            sent = time.perf_counter()
            status = await connection.exchange(request)
            result.latencies.append((index, (time.perf_counter() - sent) * 1000))
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()
    result.sent = count
    result.elapsed_s = time.time() - started
    return result


async def closed_sequence(host: str, port: int, *, requests: list[bytes]) -> LoadResult:
    """Sends each of ``requests`` once, in order, one after another on one connection (as
    :func:`closed_loop`, for requests that cannot repeat: each device's next report)."""
    reader, writer = await asyncio.open_connection(host, port)
    connection = _Connection(reader, writer)
    result = LoadResult()
    started = time.time()
    try:
        for index, request in enumerate(requests):
            sent = time.perf_counter()
            status = await connection.exchange(request)
            result.latencies.append((index, (time.perf_counter() - sent) * 1000))
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()
    result.sent = len(requests)
    result.elapsed_s = time.time() - started
    return result
