"""A winget stand-in that answers per profile, and stand-in user sessions, for the per-user
tests: real processes, started as the agent starts them.

The stand-in reads its answers from ``<profile>/winget/`` of the profile its environment names
(``USERPROFILE``, as :class:`lunaris_agent.sessions.ProfileSessions` sets it), or from
``<root>/machine/winget/`` when it runs for the machine. Each answer is a recorded output:
``upgrade.txt``, ``list.txt``, ``install.txt`` (for ``upgrade --id``); ``behaviour.json`` may
say ``{"exit": N}`` or ``{"hang": true}``. Every run appends ``{"argv", "username",
"localappdata"}`` to that profile's ``calls.jsonl``; a hanging run writes its pid to ``pid``."""

import json
import os
from pathlib import Path

from lunaris_agent.sessions import ProfileSessions

STAND_IN = """\
import json
import os
import sys
import time
from pathlib import Path

here = Path(__file__).parent
profile = os.environ.get("USERPROFILE")
box = Path(profile) / "winget" if profile else here / "machine" / "winget"
if not box.is_dir():
    box = here / "machine" / "winget"
args = sys.argv[1:]
call = {"argv": args, "username": os.environ.get("USERNAME"),
        "localappdata": os.environ.get("LOCALAPPDATA")}
with (box / "calls.jsonl").open("a", encoding="utf-8") as calls:
    calls.write(json.dumps(call) + "\\n")
behaviour_path = box / "behaviour.json"
behaviour = json.loads(behaviour_path.read_text()) if behaviour_path.exists() else {}
if behaviour.get("hang"):
    (box / "pid").write_text(str(os.getpid()))
    time.sleep(3600)
answer = box / (("install" if "--id" in args else args[0]) + ".txt")
if answer.exists():
    sys.stdout.write(answer.read_text(encoding="utf-8"))
sys.exit(behaviour.get("exit", 0))
"""

MACHINE_UPGRADE = Path(__file__).parent / "winget_samples" / "001-upgrade-basic.txt"
"""A recorded machine scan: Signal, Edge, WebView2, Office (twice) and Postman."""

INSTALLED = "Starting package install...\nSuccessfully installed\n"


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A winget table as winget prints it: padded columns under a dashed line."""
    everything = [header, *rows]
    widths = [max(len(row[i]) for row in everything) + 1 for i in range(len(header))]
    lines = [
        "".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in everything
    ]
    lines.insert(1, "-" * sum(widths))
    return "\n".join(lines) + "\n"


def upgrades(*packages: str) -> str:
    """``winget upgrade`` listing ``packages`` (ids), each 1.0 -> 2.0 from winget."""
    rows = [(p.split(".")[-1], p, "1.0", "2.0", "winget") for p in packages]
    header = ("Name", "Id", "Version", "Available", "Source")
    return table(rows, header) + f"{len(rows)} upgrades available.\n"


def installed(*packages: str) -> str:
    """``winget list`` listing ``packages`` (ids) at 1.0."""
    rows = [(p.split(".")[-1], p, "1.0", "winget") for p in packages]
    return table(rows, ("Name", "Id", "Version", "Source"))


class PerUserWinget:
    """The stand-in in ``root``, the machine's answers, and the users' profiles and sessions."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.path = root / "winget.py"
        self.path.write_text(STAND_IN, encoding="utf-8")
        self.sessions_file = root / "sessions.json"
        self.sessions = ProfileSessions(self.sessions_file)
        self.logged_on: list[dict[str, object]] = []
        self.machine = self._box(root / "machine")
        self.answer(self.machine, upgrade=MACHINE_UPGRADE.read_text(encoding="utf-8"))

    def log_on(self, account: str, session_id: int, **answers: str) -> Path:
        """A user logs on (their profile is made the first time); returns their answers'
        folder."""
        profile = self.root / "profiles" / account.rpartition("\\")[2]
        box = self._box(profile)
        self.answer(box, **answers)
        entry = {"session_id": session_id, "account": account, "profile": str(profile)}
        self.logged_on.append(entry)
        self._write_sessions()
        return box

    def log_off(self, account: str) -> None:
        self.logged_on = [entry for entry in self.logged_on if entry["account"] != account]
        self._write_sessions()

    @staticmethod
    def answer(box: Path, **answers: str) -> None:
        """``upgrade=``, ``list=``, ``install=`` outputs; ``behaviour=`` JSON."""
        for name, text in answers.items():
            suffix = ".json" if name == "behaviour" else ".txt"
            (box / f"{name}{suffix}").write_text(text, encoding="utf-8")

    @staticmethod
    def calls(box: Path) -> list[dict[str, object]]:
        path = box / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    @staticmethod
    def _box(profile: Path) -> Path:
        box = profile / "winget"
        box.mkdir(parents=True, exist_ok=True)
        (box / "install.txt").write_text(INSTALLED, encoding="utf-8")
        return box

    def _write_sessions(self) -> None:
        self.sessions_file.write_text(json.dumps(self.logged_on), encoding="utf-8")


def gone(pid: int) -> bool:
    """The process has ended (and was reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
