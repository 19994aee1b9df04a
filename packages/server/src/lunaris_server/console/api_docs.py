"""The API explorer at ``/api/docs``: Swagger UI started by a static script, so its page's
policy needs no inline script. The page carries the session's CSRF token in a meta tag,
which the script adds to the explorer's writes ("Try it out" as a logged-in user).

Swagger UI itself (``swagger-ui-bundle.js``, ``swagger-ui.css``) comes from the
fastapi-offline package, pinned in uv.lock, and is served by this server under
``/api/docs/static``: the explorer works on a network that reaches no CDN, and the page's
policy allows no other origin."""

import hashlib
from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from lunaris_server.console.web import CachedStaticFiles, get_console

router = APIRouter()

SWAGGER_UI_PATH = "/api/docs/static"
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")


def swagger_ui_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


class SwaggerUIFiles(CachedStaticFiles):
    """The package's two Swagger UI files and nothing else it ships (ReDoc, a favicon)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in SWAGGER_UI_FILES:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


@cache
def swagger_ui_urls() -> dict[str, str]:
    """Each file's URL with its content hash, so browsers may keep it until an upgrade."""
    directory = swagger_ui_dir()
    return {
        name: f"{SWAGGER_UI_PATH}/{name}?v="
        + hashlib.sha256((directory / name).read_bytes()).hexdigest()[:12]
        for name in SWAGGER_UI_FILES
    }


def mount_swagger_ui(app: FastAPI) -> None:
    app.mount(SWAGGER_UI_PATH, SwaggerUIFiles(directory=swagger_ui_dir()), name="swagger-ui")


@router.get("/api/docs", include_in_schema=False)
async def api_docs(request: Request) -> Response:
    urls = swagger_ui_urls()
    return get_console(request).render(
        request,
        "api_docs.html",
        {"swagger_ui_css": urls["swagger-ui.css"], "swagger_ui_js": urls["swagger-ui-bundle.js"]},
    )
