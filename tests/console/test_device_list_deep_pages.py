"""A page of the device list asked for by number: the same rows as walking to it, and on
PostgreSQL its offset is skipped in the index alone (the list's index covers the places)."""

from typing import Any

import pytest
from sqlalchemy import event

from lunaris_server.console.paging import PER_PAGE
from lunaris_server.devices import queries as device_queries
from lunaris_server.devices.queries import DeviceQuery, DeviceSort
from tests.console.test_device_list_paging import DEVICES, expected_order, seed
from tests.databases import POSTGRES_URL
from tests.support import app_state


@pytest.mark.parametrize(
    ("sort", "descending"),
    [(DeviceSort.HOSTNAME, False), (DeviceSort.HOSTNAME, True), (DeviceSort.UPDATES, True)],
)
async def test_every_page_by_number_holds_the_rows_of_its_place(app, clock, sort, descending):
    known = await seed(app, clock)
    field = "updates_count" if sort is DeviceSort.UPDATES else "hostname"
    expected = expected_order(known, f"{'-' if descending else ''}{field}")
    state = app_state(app)
    shown: list[str] = []
    async with state.database.session() as session:
        for offset in range(0, DEVICES, PER_PAGE):
            query = DeviceQuery(sort=sort, descending=descending, limit=PER_PAGE, offset=offset)
            page = await device_queries.device_page(
                session, query=query, liveness=state.liveness, now=clock.now
            )
            assert page.total == DEVICES
            assert page.last == (_sort_value(page.devices[-1], sort), page.devices[-1].id)
            shown += [device.id for device in page.devices]
    assert shown == expected


def _sort_value(device: Any, sort: DeviceSort) -> object:
    return device.hostname.lower() if sort is DeviceSort.HOSTNAME else device.updates_count


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in _nodes(child))]


@pytest.mark.skipif(not POSTGRES_URL, reason="index-only scans are PostgreSQL's")
async def test_a_deep_page_by_number_skips_its_offset_in_the_index_alone(app, clock):
    await seed(app, clock)
    state = app_state(app)
    engine = state.database.engine
    offset_queries: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "OFFSET" in statement:
            offset_queries.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with state.database.session() as session:
            query = DeviceQuery(limit=PER_PAGE, offset=2 * PER_PAGE)
            await device_queries.device_page(
                session, query=query, liveness=state.liveness, now=clock.now
            )
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    [(statement, parameters)] = offset_queries

    async with engine.connect() as connection:
        # A hundred rows are read faster without an index; the planner is told to pick
        # one, as it does by itself at the sizes where the offset costs something.
        await connection.exec_driver_sql("SET enable_seqscan = off")
        await connection.exec_driver_sql("SET enable_bitmapscan = off")
        explained = await connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {statement}", parameters
        )
        plan = explained.scalar_one()[0]["Plan"]
        await connection.rollback()
    scans = [node for node in _nodes(plan) if node.get("Relation Name") == "devices"]
    offset_scans = [node for node in scans if node.get("Index Name") != "pk_devices"]
    assert [(n["Node Type"], n["Index Name"]) for n in offset_scans] == [
        ("Index Only Scan", "ix_devices_hostname_folded")
    ]
    # Only the page's own rows are read from the table, by id.
    assert [n["Index Name"] for n in scans if n not in offset_scans] == ["pk_devices"]
