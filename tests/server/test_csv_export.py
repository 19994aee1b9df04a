"""CSV exports are safe to open in a spreadsheet: no cell can start a formula (OWASP's
CSV-injection guidance), whatever an agent put in a hostname or a package name. Each
export is read back with the csv module, as a spreadsheet would split it."""

import csv
import io

import pytest

from lunaris_server.console.csv_export import csv_lines
from tests.console.helpers import login
from tests.support import create_secret, create_user, register_device, update_row

DANGEROUS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "   @SUM(A1)",
    "\x00=1+1",
    "\u200b=1+1",
    "\u3000=1+1",
    "＝1+1",
    "＋1+1",
    "－1+1",
    "＠SUM(A1)",
    " ＝HYPERLINK(evil)",
]


def starts_a_formula(cell: str) -> bool:
    text = cell.lstrip(" \t\r\n\x00\u200b\u3000")
    return bool(cell) and (cell[0] in "\t\r" or (bool(text) and text[0] in "=+-@＝＋－＠"))


@pytest.mark.parametrize("value", DANGEROUS)
def test_no_cell_read_back_starts_a_formula(value):
    text = csv_lines([["id", value, "plain"]])
    [row] = list(csv.reader(io.StringIO(text)))
    assert row[0] == "id"
    assert row[2] == "plain"
    assert not starts_a_formula(row[1]), repr(row[1])
    assert row[1].endswith(value.lstrip("\t\r").lstrip())  # the text itself is all there


async def test_the_device_and_update_exports_quote_them(app, client):
    await create_user(app)
    secret = await create_secret(app)
    device = await register_device(client, secret, hostname=" =HYPERLINK(evil)")
    report = await client.post(
        "/api/agent/update-report",
        json={"updates": [update_row("Vendor.App", name="＝cmd|' /C calc'!A0")]},
        headers=device.headers,
    )
    assert report.status_code == 200, report.text
    assert (await login(client)).status_code == 303
    devices = list(csv.DictReader(io.StringIO((await client.get("/devices.csv")).text)))
    updates = list(csv.DictReader(io.StringIO((await client.get("/updates.csv")).text)))
    cells = [value for row in devices + updates for value in row.values()]
    assert any("HYPERLINK" in value for value in cells)
    assert any("calc" in value for value in cells)
    assert not [value for value in cells if starts_a_formula(value)]
