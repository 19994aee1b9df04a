"""What the pages say each role sees is what the routes let it see: the Users page's account
of the roles against the viewer's answers, and the Settings page for each role."""


async def test_the_users_page_says_what_viewers_see_and_do_not(admin, viewer):
    roles = (await admin.get("/settings/users")).text
    assert "Viewers see everything" not in roles
    said_seen = ("/devices", "/updates", "/commands", "/deployments", "/policies", "/groups")
    assert "devices, updates, software, commands, deployments, policies, groups and compliance" in (
        roles
    )
    for path in (*said_seen, "/compliance", "/settings/sessions", "/settings/tokens"):
        assert (await viewer.get(path)).status_code == 200, path
    assert "do not see enrollment secrets, users or the audit log" in roles
    for path in ("/settings/users", "/settings/audit", "/api/audit", "/api/enrollment-secrets"):
        assert (await viewer.get(path)).status_code == 403, path


async def test_the_settings_page_tells_a_viewer_whom_to_ask_for_a_secret(admin, viewer):
    seen = (await viewer.get("/settings")).text
    assert "ask an admin for one" in seen
    assert "from below" not in seen
    assert 'id="enrollment-secrets"' not in seen
    own = (await admin.get("/settings")).text
    assert "Use an enrollment secret from below." in own
    assert 'id="enrollment-secrets"' in own
