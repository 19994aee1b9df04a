"""Files only the server's own user may read: the data dir, the SQLite database (SQLite gives
its WAL and shared-memory files the database file's mode), the generated secret key.

Each is created with its final mode by the call that creates it, never written first and
``chmod``-ed after, so there is no moment in which another local user could open it.
"""

from __future__ import annotations

import os
from pathlib import Path

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700


def private_dir(path: Path) -> None:
    """Creates ``path`` (and missing parents) owner-only; an existing folder is left as the
    admin set it up (a mounted volume, say)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=OWNER_ONLY_DIR, exist_ok=True)


def create_private(path: Path, text: str = "") -> bool:
    """Creates ``path`` owner-only holding ``text``; False (and nothing written) if it exists.
    Its folder must exist (see :func:`private_dir`)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(text)
    return True
