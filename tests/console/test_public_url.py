"""The install command line and the download links in Settings name the configured public
URL, never the address a request claims in its ``Host`` header (which anyone can set: a
poisoned page would hand admins an installer line that enrolls PCs with another server)."""

import socket

import httpx
import pytest
from pydantic import ValidationError

from lunaris_server.core.settings import Settings, derived_public_url
from tests.console.helpers import login
from tests.support import create_user, seed_database

pytestmark = pytest.mark.e2e


async def test_a_forged_host_header_does_not_reach_the_install_line(app, client):
    await create_user(app)
    assert (await login(client)).status_code == 303
    page = await client.get("/settings", headers={"Host": "evil.example"})
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert "API_URL=http://127.0.0.1:8000/api" in page.text


async def test_the_configured_public_url_is_the_one_shown(app, client, settings):
    await create_user(app)
    assert (await login(client)).status_code == 303
    settings.public_url = "https://lunaris.example.com"
    page = (await client.get("/settings")).text
    assert "API_URL=https://lunaris.example.com/api" in page


def test_a_public_url_must_be_an_http_url():
    for bad in ("lunaris.example.com", "ftp://host", "https://host/?x=1"):
        with pytest.raises(ValidationError):
            Settings(public_url=bad)
    assert Settings(public_url="https://host/lunaris/").public_url == "https://host/lunaris"


def test_serve_derives_it_from_its_address():
    assert derived_public_url("10.0.0.5", 8443) == "http://10.0.0.5:8443"
    assert derived_public_url("::1", 80) == "http://[::1]:80"
    assert derived_public_url("0.0.0.0", 8000) == f"http://{socket.getfqdn()}:8000"  # noqa: S104


async def test_serve_names_where_it_listens_whatever_the_host_header(start_server, database_url):
    seeded = await seed_database(database_url)
    server = start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await login(http, seeded.username, seeded.password)).status_code == 303
        page = await http.get("/settings", headers={"Host": "evil.example"})
    assert f"API_URL={server.base_url}/api" in page.text
    assert "evil.example" not in page.text
