"""How a run of the agent ends: its exit code, and :class:`AgentStopped` when it cannot go on."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    """``once`` could not finish: the server was unreachable or refused a message."""
    CONFIG = 2
    REJECTED = 3
    """The server refused the enrollment secret or the device token: someone must act."""


class AgentStopped(Exception):
    """The agent cannot go on without someone's help; the message says what to do."""

    def __init__(self, message: str, code: ExitCode = ExitCode.REJECTED) -> None:
        super().__init__(message)
        self.code = code
