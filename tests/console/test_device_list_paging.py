"""The device list's pager: "next" and "previous" seek from the edge of the page shown,
and walking a list either way shows every device once, in order, whatever the sort."""

import html
import re
import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from lunaris_server.console.paging import PER_PAGE, encode_cursor
from lunaris_server.devices.models import Device
from tests.console.helpers import login
from tests.support import FakeClock, app_state, create_user

DEVICES = 2 * PER_PAGE + 17
_ROW = re.compile(r'<tr id="device-([0-9a-f-]+)"')
_LINK = re.compile(r'rel="(next|prev)" href="([^"]+)"')


@pytest.fixture
async def admin(app: FastAPI, client: httpx.AsyncClient) -> httpx.AsyncClient:
    await create_user(app)
    assert (await login(client)).status_code == 303
    return client


async def seed(app: FastAPI, clock: FakeClock) -> dict[str, Device]:
    """Devices in bulk, with mixed-case hostnames and ties in every other sort column."""
    rows = [
        {
            "id": str(uuid.uuid4()),
            "hostname": f"{'pc' if n % 3 else 'PC'}-{(n * 37) % DEVICES:03}",
            "token_hash": uuid.uuid4().hex,
            "enrolled_at": clock.now,
            "last_seen_at": clock.now - timedelta(minutes=n % 4),
            "updates_count": n % 5,
        }
        for n in range(DEVICES)
    ]
    async with app_state(app).database.session() as session:
        await session.execute(insert(Device), rows)
        await session.commit()
    return {row["id"]: Device(**row) for row in rows}


def expected_order(devices: dict[str, Device], sort: str) -> list[str]:
    field = sort.removeprefix("-")
    descending = sort.startswith("-")

    def key(device: Device) -> tuple[object, str]:
        value = getattr(device, field)
        return (value.lower() if field == "hostname" else value, device.id)

    return [d.id for d in sorted(devices.values(), key=key, reverse=descending)]


def page_rows(text: str) -> list[str]:
    return _ROW.findall(text)


def link(text: str, rel: str) -> str | None:
    links = {r: html.unescape(href) for r, href in _LINK.findall(text)}
    return links.get(rel)


@pytest.mark.parametrize(
    "sort", ["hostname", "-hostname", "-updates_count", "last_seen_at", "-last_seen_at"]
)
async def test_next_and_previous_walk_the_whole_list_once(app, admin, clock, sort):
    devices = await seed(app, clock)
    expected = expected_order(devices, sort)
    url: str | None = f"/devices?sort={sort}"
    pages = []
    while url is not None:
        text = (await admin.get(url, headers={"HX-Request": "true"})).text
        pages.append((url, page_rows(text)))
        url = link(text, "next")
    assert [row for _, rows in pages for row in rows] == expected
    assert [len(rows) for _, rows in pages] == [PER_PAGE, PER_PAGE, DEVICES - 2 * PER_PAGE]
    assert "after=" in pages[-1][0]  # reached by seeking, not by offset

    # Back again from the last page; each page is the one seen on the way forward.
    url = pages[-1][0]
    for _, rows in reversed(pages):
        text = (await admin.get(url)).text
        assert page_rows(text) == rows
        url = link(text, "prev")
    assert url is None

    # A page asked for by number (an offset) is the same page.
    by_number = (await admin.get(f"/devices?sort={sort}&page=3")).text
    assert page_rows(by_number) == pages[2][1]
    assert f"{2 * PER_PAGE + 1}–{DEVICES} of {DEVICES}" in by_number


async def test_the_pager_keeps_filters_and_a_new_sort_or_filter_starts_over(app, admin, clock):
    await seed(app, clock)
    first = (await admin.get("/devices?q=pc&has_updates=yes")).text
    next_page = link(first, "next")
    assert next_page is not None
    assert "q=pc" in next_page
    assert "has_updates=yes" in next_page
    assert "page=2" in next_page
    second = (await admin.get(next_page)).text
    sort_link = re.search(r'href="(/devices\?[^"]*sort=-hostname[^"]*)"', second)
    assert sort_link is not None
    assert "after=" not in sort_link.group(1)
    assert "page=" not in sort_link.group(1)


async def test_a_broken_position_is_refused(admin):
    wrong_type = encode_cursor(("PC-001", str(uuid.uuid4())))  # a hostname, not a time
    for query in ("after=not-a-cursor", f"sort=-last_seen_at&after={wrong_type}"):
        response = await admin.get(f"/devices?{query}", headers={"Accept": "text/html"})
        assert response.status_code == 422
        assert "<html" in response.text
