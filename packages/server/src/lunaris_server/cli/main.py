"""``lunaris-server``: serve, migrate, the demo, and account/enrollment administration."""

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import click
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_server.accounts import service as accounts
from lunaris_server.audit.service import CLI_ACTOR
from lunaris_server.core.clock import utc_now
from lunaris_server.core.durations import parse_duration
from lunaris_server.core.environment import UnfitForProduction, check_environment
from lunaris_server.core.errors import DomainError
from lunaris_server.core.logs import configure_logging
from lunaris_server.core.settings import Settings, derived_public_url
from lunaris_server.db import Database
from lunaris_server.db.migrate import upgrade_to_head
from lunaris_server.enrollment import service as enrollment
from lunaris_server.realtime import outbox
from lunaris_server.realtime.bus import Message, PostgresBus

T = TypeVar("T")

log = structlog.get_logger("lunaris.cli")


def _settings() -> Settings:
    return Settings()


def _run_in_session(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Runs one unit of work against the configured database and commits it."""
    settings = _settings()

    async def run() -> T:
        database = Database(settings.resolved_database_url)
        try:
            async with database.session() as session:
                result = await action(session)
                await session.commit()
                await _publish(settings, outbox.take_messages(session))
                return result
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except DomainError as error:
        raise click.ClickException(error.message) from None


async def _publish(settings: Settings, messages: list[Message]) -> None:
    """Tells the server processes (on PostgreSQL) what the CLI changed, say sessions it
    ended; with SQLite their periodic checks notice."""
    if not messages or settings.is_sqlite:
        return
    bus = PostgresBus(settings.resolved_database_url)
    try:
        for message in messages:
            await bus.publish(message)
    except Exception as error:
        log.warning("could not tell the servers; they notice within a minute", error=str(error))
    finally:
        await bus.stop()


@click.group()
@click.version_option(package_name="lunaris-server")
def main() -> None:
    """Lunaris server. Settings come from LUNARIS_* environment variables."""


@main.command()
def migrate() -> None:
    """Upgrade the database to the newest schema."""
    settings = _settings()
    configure_logging(settings)
    upgrade_to_head(settings.resolved_database_url)
    click.echo("database is up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port (PostgreSQL only).",
)
def serve(host: str, port: int, workers: int) -> None:
    """Migrate the database, then serve the API and console."""
    from lunaris_server.cli.serving import serve as run_server

    settings = _settings()
    if settings.public_url is None:
        settings = settings.model_copy(update={"public_url": derived_public_url(host, port)})
    if workers > 1 and settings.is_sqlite:
        raise click.UsageError("--workers above 1 needs PostgreSQL (set LUNARIS_DATABASE_URL)")
    try:
        warnings = check_environment(settings)
    except UnfitForProduction as error:
        raise click.ClickException(str(error)) from None
    configure_logging(settings)
    for warning in warnings:
        log.warning("configuration warning", env=settings.env.value, problem=warning)
    upgrade_to_head(settings.resolved_database_url)
    run_server(settings, host=host, port=port, workers=workers)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--devices", default=25, show_default=True, type=click.IntRange(0, 10_000))
@click.option(
    "--summary-every",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="How often the terminal gets a line on the fleet (the log: demo.log in the data dir).",
)
def demo(host: str, port: int, devices: int, summary_every: float) -> None:
    """Serve with a demo admin and simulated agents reporting through the real agent API."""
    from lunaris_server.cli.demo import open_log, run_demo

    settings = _settings()
    if settings.public_url is None and port:
        settings = settings.model_copy(update={"public_url": derived_public_url(host, port)})
    log_file = open_log(settings.data_dir)  # open while the process lives, as stderr is
    configure_logging(settings, log_file=log_file)
    upgrade_to_head(settings.resolved_database_url)
    run_demo(
        settings,
        host=host,
        port=port,
        device_count=devices,
        log_file=log_file,
        summary_every_s=summary_every,
    )


@main.group()
def user() -> None:
    """Console users."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "viewer"]), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(name: str, role: str, password_stdin: bool) -> None:
    """Add a console user (the password is prompted for unless --password-stdin)."""
    password = _read_password(password_stdin)

    async def add(session: AsyncSession) -> None:
        await accounts.add_user(
            session, username=name, password=password, role=role, now=utc_now(), actor=CLI_ACTOR
        )

    _run_in_session(add)
    click.echo(f"added {role} {name}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_set_password(name: str, password_stdin: bool) -> None:
    """Give a user a new password; every session of theirs ends at once."""
    password = _read_password(password_stdin)

    async def change(session: AsyncSession) -> None:
        found = await accounts.get_user_by_name(session, username=name)
        await accounts.set_password(
            session, user_id=found.id, password=password, now=utc_now(), actor=CLI_ACTOR
        )

    _run_in_session(change)
    click.echo(f"new password set for {name}; their sessions have ended")


@main.group()
def token() -> None:
    """API tokens for scripts."""


@token.command("add")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@click.option("--name", default="api token", show_default=True)
def token_add(username: str, name: str) -> None:
    """Create an API token; it is printed once, alone on the last line."""

    async def add(session: AsyncSession) -> str:
        owner = await accounts.get_user_by_name(session, username=username)
        created = await accounts.add_api_token(
            session, user=owner, name=name, now=utc_now(), actor=CLI_ACTOR
        )
        return created.plaintext

    plaintext = _run_in_session(add)
    click.echo(f"API token for {username} (shown once, store it now):")
    click.echo(plaintext)


@main.group("enrollment")
def enrollment_group() -> None:
    """Enrollment secrets: what an installer needs so a PC may register."""


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@enrollment_group.command("add")
@click.option("--name", required=True)
@click.option("--expires-in", callback=_duration, help="e.g. 12h, 7d, 2w; default: never")
@click.option("--max-uses", type=click.IntRange(min=1), help="default: unlimited")
def enrollment_add(name: str, expires_in: timedelta | None, max_uses: int | None) -> None:
    """Create an enrollment secret; it is printed once, alone on the last line."""

    async def add(session: AsyncSession) -> str:
        created = await enrollment.create_secret(
            session,
            name=name,
            expires_in=expires_in,
            max_uses=max_uses,
            now=utc_now(),
            actor=CLI_ACTOR,
        )
        return created.plaintext

    plaintext = _run_in_session(add)
    click.echo(f"enrollment secret {name!r} (shown once, store it now):")
    click.echo(plaintext)


@enrollment_group.command("list")
def enrollment_list() -> None:
    """List enrollment secrets with their uses, expiry and state."""

    async def load(session: AsyncSession) -> list[tuple[int, str, str, str, str]]:
        now = utc_now()
        rows = []
        for secret in await enrollment.list_secrets(session):
            if secret.revoked_at is not None:
                state = "revoked"
            elif secret.expires_at is not None and secret.expires_at <= now:
                state = "expired"
            elif secret.max_uses is not None and secret.uses >= secret.max_uses:
                state = "used up"
            else:
                state = "active"
            uses = f"{secret.uses}/{secret.max_uses}" if secret.max_uses else str(secret.uses)
            expires = secret.expires_at.strftime("%Y-%m-%d %H:%M UTC") if secret.expires_at else "-"
            rows.append((secret.id, secret.name, uses, expires, state))
        return rows

    rows = _run_in_session(load)
    if not rows:
        click.echo("no enrollment secrets; create one: lunaris-server enrollment add --name NAME")
        return
    click.echo(f"{'ID':>4}  {'NAME':<24} {'USES':>9}  {'EXPIRES':<20} STATE")
    for secret_id, name, uses, expires, state in rows:
        click.echo(f"{secret_id:>4}  {name:<24} {uses:>9}  {expires:<20} {state}")


@enrollment_group.command("revoke")
@click.argument("secret_id", type=int)
def enrollment_revoke(secret_id: int) -> None:
    """Revoke an enrollment secret: no new registrations with it."""

    async def revoke(session: AsyncSession) -> str:
        secret = await enrollment.revoke_secret(
            session, secret_id=secret_id, now=utc_now(), actor=CLI_ACTOR
        )
        return secret.name

    name = _run_in_session(revoke)
    click.echo(f"revoked enrollment secret {secret_id} ({name})")
