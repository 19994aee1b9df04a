"""The install command line and the download links in Settings name the configured public
URL, never the address a request claims in its ``Host`` header (which anyone can set: a
poisoned page would hand admins an installer line that enrolls PCs with another server)."""

import pytest

from tests.console.conftest import login
from tests.support import create_user


@pytest.mark.xfail(strict=True, reason="the install line is built from the Host header")
async def test_a_forged_host_header_does_not_reach_the_install_line(app, client):
    await create_user(app)
    assert (await login(client)).status_code == 303
    page = await client.get("/settings", headers={"Host": "evil.example"})
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert "API_URL=http://127.0.0.1:8000/api" in page.text
