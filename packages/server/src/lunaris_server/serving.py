"""Running the app under uvicorn."""

import asyncio
import socket

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from lunaris_server.app import create_app
from lunaris_server.settings import Settings

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


def uvicorn_config(settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        ws=BoundedWebSocketProtocol,
        log_config=None,  # logs.configure_logging owns the handlers
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


def serve(settings: Settings, *, host: str, port: int) -> None:
    uvicorn.Server(uvicorn_config(settings, host=host, port=port)).run()
