"""A progress step with a control character (NUL, BEL, ESC) in any field, or a format
character (a bidi override) in an identifier, is refused and changes nothing: SQLite would
store a NUL that PostgreSQL cannot, and an outcome or package id that reads differently from
what it is would fool the admin reading the command's history. The agent cleans what winget
printed before sending it, so a real agent's step is never refused for it."""

import pytest

from lunaris_agent.winget.text import clean_message
from lunaris_protocol import CommandProgress
from tests.commands.helpers import enrolled, heartbeat, progress, result
from tests.commands.test_api import create, detail

NUL, BELL, ESC, RLO = "\x00", "\x07", "\x1b", "\u202e"


@pytest.mark.parametrize(
    "step",
    [
        {"package_started": f"Git{NUL}.Git"},
        {"package_started": f"{RLO}tiG.tiG"},
        {"result": result(f"Git.Git{BELL}")},
        {"result": result("Git.Git", outcome=f"success{NUL}")},
        {"result": result("Git.Git", outcome=f"{RLO}deliaf")},
        {"result": result("Git.Git", hresult=f"0x8A15{ESC}[2K0001")},
        {"result": result("Git.Git", message=f"done{NUL}")},
        {"message": f"winget {ESC}]9;4;1;50{BELL} failed"},
    ],
)
async def test_a_step_with_an_invisible_character_is_refused(client, tokens, secret, step):
    device = await enrolled(client, secret, ["Git.Git"])
    command_id = (await create(client, tokens, device.device_id, ["Git.Git"]))["id"]
    await heartbeat(client, device)
    before = await detail(client, tokens, command_id)
    refused = await progress(client, device, command_id, 1, expect=422, **step)
    assert refused["error"]["code"] == "invalid_request"
    assert await detail(client, tokens, command_id) == before


async def test_messages_may_keep_line_breaks_and_format_characters(client, tokens, secret):
    device = await enrolled(client, secret, ["Git.Git"])
    command_id = (await create(client, tokens, device.device_id, ["Git.Git"]))["id"]
    await heartbeat(client, device)
    message = f"line one\r\n\tline two {RLO}shown isolated"
    await progress(client, device, command_id, 1, result=result("Git.Git", message=message))
    shown = await detail(client, tokens, command_id)
    assert [r["message"] for r in shown["results"]] == [message]


def test_the_agent_cleans_what_winget_printed_before_sending_it():
    printed = f"Installer{NUL} failed {ESC}[31mred{ESC}[0m{BELL}\r\n\tnext"
    cleaned = clean_message(printed)
    assert cleaned == "Installer failed red\r\n\tnext"
    CommandProgress.model_validate({"sequence": 1, "status": "failed", "message": cleaned})
