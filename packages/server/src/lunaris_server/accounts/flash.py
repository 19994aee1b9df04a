"""One-time flashes: what a console page shows once, after the redirect that follows a form.

A form that creates a secret (an enrollment secret, an API token) answers 303 to its page
(post/redirect/get); the secret waits for that page here, in a row of the session that made
it, never in a URL. The page takes it with one ``DELETE ... RETURNING``, committed before it
renders, so a reload, a second tab or a concurrent request of the same session finds nothing
(on PostgreSQL the second delete waits for the first and then finds the row gone).

The secret is never in the database in clear text: it is sealed with AES-256-GCM under a key
derived from the server's secret key *and* the session's cookie, whose random id the
database does not hold (only its SHA-256). A copy of the database, its write-ahead log or a
backup, even with the server's key, cannot open it. A flash left unread expires after
``LIFETIME``; it is deleted when its session ends, and expired ones are purged whenever a
flash is made.
"""

import base64
import functools
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from lunaris_server.accounts.models import SessionFlash, UserSession
from lunaris_server.console.csrf import SESSION_COOKIE
from lunaris_server.core.errors import Forbidden
from lunaris_server.realtime import outbox

log = structlog.get_logger("lunaris.flash")

LIFETIME = timedelta(minutes=5)
"""How long a flash waits for its page: the redirect is followed at once."""
MAX_FIELD = 512
_NONCE = 12


@dataclass(frozen=True, slots=True)
class Flash:
    """A secret shown once: what it is called, and the secret itself."""

    name: str
    plaintext: str


class FlashSeal:
    """Seals a flash for one session: the key is an HMAC of the session's cookie under a key
    derived from the server's secret key."""

    def __init__(self, secret_key: str) -> None:
        self._root = hashlib.sha256(f"lunaris.flash:{secret_key}".encode()).digest()

    def _cipher(self, cookie: str) -> AESGCM:
        return AESGCM(hmac.new(self._root, cookie.encode(), hashlib.sha256).digest())

    @staticmethod
    def _context(session_id: int, page: str) -> bytes:
        """Bound into each seal: a row copied to another session or page does not open."""
        return f"{session_id}:{page}".encode()

    def seal(self, flash: Flash, *, cookie: str, session_id: int, page: str) -> str:
        nonce = os.urandom(_NONCE)
        body = json.dumps({"name": flash.name, "plaintext": flash.plaintext}).encode()
        sealed = self._cipher(cookie).encrypt(nonce, body, self._context(session_id, page))
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, *, cookie: str, session_id: int, page: str) -> Flash | None:
        """The flash, or None if this cookie, session and page did not seal it."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            body = self._cipher(cookie).decrypt(
                raw[:_NONCE], raw[_NONCE:], self._context(session_id, page)
            )
            fields = json.loads(body)
            return Flash(name=str(fields["name"]), plaintext=str(fields["plaintext"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None


async def _store(
    session: AsyncSession,
    seal: FlashSeal,
    *,
    user_session: UserSession,
    cookie: str,
    page: str,
    flash: Flash,
    now: datetime,
) -> None:
    """Leaves ``flash`` for the next request of this session to ``page`` (the caller
    commits, with whatever the flash tells of)."""
    if len(flash.name) > MAX_FIELD or len(flash.plaintext) > MAX_FIELD:
        raise ValueError("a flash holds a name and a secret, not a document")
    await session.execute(
        delete(SessionFlash)
        .where(SessionFlash.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    session.add(
        SessionFlash(
            session_id=user_session.id,
            page=page,
            sealed=seal.seal(flash, cookie=cookie, session_id=user_session.id, page=page),
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    await session.flush()


async def _take_sealed(
    session: AsyncSession,
    seal: FlashSeal,
    *,
    user_session: UserSession,
    cookie: str,
    page: str,
    now: datetime,
) -> list[Flash]:
    """Deletes this session's flashes for ``page`` and returns those still fresh, oldest
    first. The page that shows them commits first: a reload then finds nothing."""
    rows = (
        await session.execute(
            delete(SessionFlash)
            .where(SessionFlash.session_id == user_session.id, SessionFlash.page == page)
            .returning(SessionFlash.id, SessionFlash.sealed, SessionFlash.expires_at)
            .execution_options(synchronize_session=False)
        )
    ).all()
    flashes = []
    for _id, sealed, expires_at in sorted(rows):
        if expires_at <= now:
            continue
        flash = seal.open(sealed, cookie=cookie, session_id=user_session.id, page=page)
        if flash is None:  # sealed under another server key: it cannot be shown
            log.warning("a flash could not be opened", session_id=user_session.id, page=page)
            continue
        flashes.append(flash)
    return flashes


async def drop(session: AsyncSession, *, session_ids: list[int]) -> None:
    """Deletes the flashes of sessions that ended (the caller commits)."""
    if session_ids:
        await session.execute(
            delete(SessionFlash)
            .where(SessionFlash.session_id.in_(session_ids))
            .execution_options(synchronize_session=False)
        )


# -- for the request: the console session of the form or page that leaves or shows a flash --
# A form leaves a flash in the transaction that creates what it tells of, then redirects; the
# page it redirects to takes its flashes and commits before it renders.


def _seal(request: Request) -> FlashSeal:
    state = request.app.state.lunaris
    return _seal_for(state.settings.session_secret())


@functools.cache
def _seal_for(secret_key: str) -> FlashSeal:
    return FlashSeal(secret_key)


def _session_of(request: Request) -> tuple[UserSession, str] | None:
    """The request's console session and its cookie (None for an API token's request)."""
    user_session: UserSession | None = getattr(request.state, "user_session", None)
    cookie = request.cookies.get(SESSION_COOKIE)
    return (user_session, cookie) if user_session is not None and cookie else None


async def leave(
    request: Request, session: AsyncSession, *, page: str, flash: Flash, now: datetime
) -> None:
    """Before the commit: a request that has no console session (an API token's) cannot be
    shown the secret after a redirect, so it is refused and creates nothing."""
    found = _session_of(request)
    if found is None:
        raise Forbidden("this form needs a console login; scripts use the API")
    user_session, cookie = found
    await _store(
        session,
        _seal(request),
        user_session=user_session,
        cookie=cookie,
        page=page,
        flash=flash,
        now=now,
    )


async def take(request: Request, session: AsyncSession, *, page: str, now: datetime) -> list[Flash]:
    """This session's flashes for ``page``, deleted and committed: shown once."""
    found = _session_of(request)
    if found is None:
        return []
    user_session, cookie = found
    taken = await _take_sealed(
        session,
        _seal(request),
        user_session=user_session,
        cookie=cookie,
        page=page,
        now=now,
    )
    await outbox.commit(session, request.app.state.lunaris)
    return taken
