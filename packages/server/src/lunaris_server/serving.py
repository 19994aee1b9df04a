"""Running the app under uvicorn."""

import uvicorn

from lunaris_server.app import create_app
from lunaris_server.settings import Settings


def uvicorn_config(settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,  # logs.configure_logging owns the handlers
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


def serve(settings: Settings, *, host: str, port: int) -> None:
    uvicorn.Server(uvicorn_config(settings, host=host, port=port)).run()
