"""Running the app under uvicorn."""

import asyncio
import os
import shutil
import socket
import tempfile

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.supervisors import Multiprocess

from lunaris_server.app import create_app
from lunaris_server.core.logs import configure_logging
from lunaris_server.core.settings import Settings
from lunaris_server.web.metrics import MULTIPROCESS_DIR_VARIABLE

WEBSOCKET_SEND_BUFFER_BYTES = 128 * 1024
"""Kernel send buffer per WebSocket. Left alone, Linux grows it to 4 MB for a peer that stops
reading; capped, a stuck console costs little memory and is noticed (told to resync, then
dropped) after a few hundred kilobytes instead of megabytes."""


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WEBSOCKET_SEND_BUFFER_BYTES)
        super().connection_made(transport)


def app_from_environment() -> FastAPI:
    """The app of one worker process: settings and logging come from the environment."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)


def uvicorn_config(settings: Settings, *, host: str, port: int, workers: int = 1) -> uvicorn.Config:
    # Workers are separate processes: each builds its own app from the environment.
    app: FastAPI | str = (
        create_app(settings) if workers == 1 else "lunaris_server.cli.serving:app_from_environment"
    )
    return uvicorn.Config(
        app,
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        ws=BoundedWebSocketProtocol,
        log_config=None,  # logs.configure_logging owns the handlers
        access_log=False,
        server_header=False,
        # Only the configured proxy may say which client and scheme a request came with.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
    )


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    if workers > 1 and settings.is_sqlite:
        # Each process would have its own event bus and its own SQLite writer.
        raise ValueError("several workers need PostgreSQL (LUNARIS_DATABASE_URL)")
    config = uvicorn_config(settings, host=host, port=port, workers=workers)
    if workers == 1:
        uvicorn.Server(config).run()
        return
    sock = config.bind_socket()
    # Workers are started afresh and inherit the environment: prometheus_client in each
    # then keeps its figures in this directory, and any worker's /metrics sums them all.
    metrics_dir = tempfile.mkdtemp(prefix="lunaris-metrics-")
    os.environ[MULTIPROCESS_DIR_VARIABLE] = metrics_dir
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        del os.environ[MULTIPROCESS_DIR_VARIABLE]
        shutil.rmtree(metrics_dir, ignore_errors=True)
