"""The browser the console tests drive: Debian's Chromium, headless, through Playwright."""

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
"""Debian's, which scripts/dev.py installs (or says to install) before the tests."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@asynccontextmanager
async def launch_chromium() -> AsyncIterator[Any]:
    """A started headless Chromium (Playwright's ``Browser``), closed on the way out."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


def answer_next_dialog(page: Any, *, accept: bool) -> list[str]:
    """Answers the page's next dialog (a ``confirm()``); the list gets its message."""
    asked: list[str] = []

    async def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        await (dialog.accept() if accept else dialog.dismiss())

    page.once("dialog", answer)
    return asked
