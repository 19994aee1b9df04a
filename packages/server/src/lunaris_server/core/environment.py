"""What each environment (``LUNARIS_ENV``) demands of the configuration before serving.

``prod`` refuses to start on a configuration that is unsafe to expose: no fixed cookie key,
the embedded database (unless allowed explicitly), session cookies sent over plain HTTP, a
guessable metrics token. ``staging`` runs the same checks and only warns, so a rehearsal can
run on SQLite or without TLS. ``dev`` checks nothing.
"""

from dataclasses import dataclass, field

from lunaris_server.core.settings import Environment, Settings

MIN_SECRET_KEY_CHARS = 32
MIN_METRICS_TOKEN_CHARS = 16


@dataclass(frozen=True)
class EnvironmentCheck:
    problems: list[str] = field(default_factory=list)
    """Each makes the configuration unfit for production."""
    advice: list[str] = field(default_factory=list)
    """Worth a warning in production, never a refusal."""


class UnfitForProduction(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"refusing to start with LUNARIS_ENV=prod:\n{lines}")


def check_production_fitness(settings: Settings) -> EnvironmentCheck:
    problems = []
    if not settings.secret_key:
        problems.append(
            "LUNARIS_SECRET_KEY is not set: session cookies need a fixed key shared by every "
            "server process (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    elif len(settings.secret_key) < MIN_SECRET_KEY_CHARS:
        problems.append(
            f"LUNARIS_SECRET_KEY is too short: use at least {MIN_SECRET_KEY_CHARS} random "
            "characters"
        )
    if settings.is_sqlite and not settings.allow_sqlite_in_prod:
        problems.append(
            "the database is SQLite: set LUNARIS_DATABASE_URL to PostgreSQL, or "
            "LUNARIS_ALLOW_SQLITE_IN_PROD=true for a single-process installation"
        )
    if not settings.cookie_secure:
        problems.append(
            "LUNARIS_COOKIE_SECURE is false: session cookies would travel over plain HTTP; "
            "serve behind HTTPS and leave it at its default (true)"
        )
    if settings.metrics_token and len(settings.metrics_token) < MIN_METRICS_TOKEN_CHARS:
        problems.append(
            f"LUNARIS_METRICS_TOKEN is too short: use at least {MIN_METRICS_TOKEN_CHARS} random "
            "characters"
        )
    advice = []
    if not settings.public_url:
        advice.append(
            "LUNARIS_PUBLIC_URL is not set: the install command line in Settings names the "
            "address serve listens on; set it to the URL PCs reach (https://lunaris.example.com)"
        )
    if (settings.forwarded_allow_ips or "").strip() == "*":
        advice.append(
            "LUNARIS_FORWARDED_ALLOW_IPS is *: any client can name its own address in "
            "X-Forwarded-For (and pick its rate-limit bucket); name the proxy's address instead"
        )
    if not settings.forwarded_allow_ips:
        advice.append(
            "LUNARIS_FORWARDED_ALLOW_IPS is not set: behind a TLS-terminating proxy, set it to "
            "the proxy's address so client addresses and https links are right"
        )
    return EnvironmentCheck(problems=problems, advice=advice)


def check_environment(settings: Settings) -> list[str]:
    """Raises ``UnfitForProduction`` in prod when a check fails; returns what to warn about
    (in staging, the failed checks too)."""
    if settings.env is Environment.DEV:
        return []
    check = check_production_fitness(settings)
    if settings.env is Environment.PROD:
        if check.problems:
            raise UnfitForProduction(check.problems)
        return check.advice
    return [*check.problems, *check.advice]
