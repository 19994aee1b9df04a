"""Server settings, read from the environment (prefix ``LUNARIS_``)."""

import socket
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
"""Where ``serve`` listens by default."""


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LUNARIS_", extra="ignore")

    env: Environment = Environment.DEV
    data_dir: Path = Path("data")
    """Where the embedded database and generated secrets live."""
    database_url: str | None = None
    """``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://user@host/db``; default: SQLite
    in ``data_dir``."""
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)

    secret_key: str | None = None
    """Keys the CSRF tokens. Generated once into ``data_dir`` when unset outside prod."""
    session_max_age_s: int = Field(default=12 * 3600, ge=60)
    """A console session ends this long after its login, used or not."""
    session_check_interval_s: float = Field(default=30.0, gt=0, le=3600)
    """How often each process checks the sessions of the console sockets it holds (a safety
    net behind the bus: an expiry, or an ending no announcement told it of)."""
    cookie_secure: bool = False
    """Mark the session cookie ``Secure``. Default: true outside dev (set when not given)."""
    public_url: str | None = None
    """The address PCs and browsers reach this server at (``https://lunaris.example.com``):
    the install command line and download links name it. Unset, ``serve`` derives it from
    its own ``--host`` and ``--port``; it is never taken from a request's ``Host`` header."""
    forwarded_allow_ips: str | None = None
    """Addresses (comma-separated, CIDR allowed, or ``*``) of the TLS-terminating proxy whose
    ``X-Forwarded-For``/``-Proto`` headers are trusted; unset: none are."""
    allow_sqlite_in_prod: bool = False
    """Let prod run on the embedded SQLite database (one process, no replicas)."""
    metrics_token: str | None = None
    """Bearer token for ``GET /metrics``; unset: only loopback clients in dev may read it."""

    heartbeat_interval_s: int = Field(default=60, ge=1, le=86_400)
    scan_interval_s: int = Field(default=3600, ge=60, le=86_400)
    inventory_interval_s: int = Field(default=6 * 3600, ge=60, le=86_400)
    """How often at most an agent lists everything installed (``winget list``); it also does
    after every install. A steady PC's inventory costs a 64-character digest."""
    offline_after_missed_heartbeats: int = Field(default=3, ge=1, le=100)
    offline_sweep_interval_s: float = Field(default=5.0, gt=0, le=3600)
    """How often each process looks for devices that went quiet."""
    device_cache_ttl_s: float = Field(default=900.0, ge=0, le=86_400)
    """How long a process answers a device's plain heartbeats from memory before reading it
    again. Changes evict it at once through the bus; this only bounds how long a missed
    announcement could go unnoticed. Keep it well above the heartbeat interval, or every
    heartbeat reads the database."""
    compliance_cache_s: float = Field(default=30.0, ge=0, le=3600)
    """How long the consoles of a process share one count of the compliance figures (a count
    takes about a second at 100,000 devices); 0 counts for every refresh."""
    console_queue_size: int = Field(default=256, ge=1, le=100_000)
    """Events buffered per console socket before the client is told to resync."""
    command_expiry_s: int = Field(default=24 * 3600, ge=60, le=30 * 86_400)
    """A command no agent has started this long after it was created expires."""
    command_sweep_interval_s: float = Field(default=30.0, gt=0, le=3600)
    """How often each process expires overdue commands and re-reads which devices have
    commands waiting (a safety net behind the bus)."""
    scheduler_interval_s: float = Field(default=60.0, ge=1, le=3600)
    """How often the scheduler looks for policy installs that are due (one process runs
    each tick)."""
    scheduler_max_devices_per_tick: int = Field(default=5_000, ge=1, le=1_000_000)
    """Devices one tick queues installs for at most; the rest wait for the next tick (so a
    new policy over a large fleet is taken in bounded steps)."""
    scheduler_max_installs_per_tick: int = Field(default=2_500, ge=1, le=1_000_000)
    """Installs (a command and its ``policy_installs`` key each) one tick queues at most,
    about: a device's installs are queued together, and the tick stops taking devices once
    this many are queued. The database time of a tick grows with its installs."""
    scheduler_enabled: bool = True
    """Whether this process takes part in running the scheduler's ticks."""
    command_running_timeout_s: int = Field(default=4 * 3600, ge=60, le=30 * 86_400)
    """A running command the agent has reported no step of for this long is failed. The
    agent reports every package's start and end and gives one package an hour at most."""

    reenroll_grace_s: int = Field(default=900, ge=0, le=86_400)
    """A device that never made an authenticated call may register again without proof
    this long after enrolling (the answer that carried its token was lost)."""
    login_failures_per_minute: int = Field(default=30, ge=1, le=100_000)
    """Wrong passwords one client address may send per minute (per process), whatever the
    usernames; successful logins are not counted (an office logs in together)."""
    register_per_secret_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    """Registrations per minute with one enrollment secret (per process), after a burst of
    ten minutes' worth: a rollout enrols thousands of PCs through one NAT address."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body accepted, except update reports (see below)."""
    max_report_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    agent_downloads_dir: Path | None = None
    """Where the console finds ``lunaris-agent-*.msi`` to offer; default ``data_dir/downloads``."""

    @model_validator(mode="after")
    def _secure_cookies_outside_dev(self) -> "Settings":
        if "cookie_secure" not in self.model_fields_set and self.env is not Environment.DEV:
            self.cookie_secure = True
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'lunaris.db').resolve()}"

    @property
    def command_expiry(self) -> timedelta:
        return timedelta(seconds=self.command_expiry_s)

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("LUNARIS_PUBLIC_URL is an http(s) URL such as https://host")
        return value.strip().rstrip("/")

    @property
    def resolved_public_url(self) -> str:
        return self.public_url or DEFAULT_PUBLIC_URL

    @property
    def reenroll_grace(self) -> timedelta:
        return timedelta(seconds=self.reenroll_grace_s)

    @property
    def offline_after_s(self) -> int:
        return self.heartbeat_interval_s * self.offline_after_missed_heartbeats

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def session_secret(self) -> str:
        """The key of the CSRF tokens: configured, or generated once and kept in ``data_dir``."""
        if self.secret_key:
            return self.secret_key
        if self.env is Environment.PROD:
            raise RuntimeError("LUNARIS_SECRET_KEY must be set when LUNARIS_ENV=prod")
        from lunaris_server.core.private_files import create_private, private_dir
        from lunaris_server.core.security import new_secret_key

        path = self.data_dir / "secret_key"
        private_dir(path.parent)
        create_private(path, new_secret_key())  # the first process to start writes it
        return path.read_text(encoding="ascii").strip()

    @property
    def resolved_agent_downloads_dir(self) -> Path:
        return self.agent_downloads_dir or self.data_dir / "downloads"


def derived_public_url(host: str, port: int) -> str:
    """The public URL ``serve --host --port`` implies when none is configured: this machine's
    name for a wildcard address, the address itself otherwise."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - recognising, not binding
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
