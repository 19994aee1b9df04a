"""The container image and the compose file: what they promise, checked without a Docker
engine. ``docker compose config`` (or ``docker-compose config``) validates the compose file
where either is installed; the structure is checked with PyYAML in any case."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "infra" / "docker"
SERVE = ["lunaris-server", "serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
REQUIRED = {"POSTGRES_PASSWORD": "pg-password-123", "LUNARIS_SECRET_KEY": "k" * 48}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def runtime_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKER / "Dockerfile")
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def exec_form(arguments: str) -> list[str]:
    parsed = yaml.safe_load(arguments)  # a JSON array is YAML too
    assert isinstance(parsed, list), f"not the exec form: {arguments}"
    return [str(part) for part in parsed]


def test_the_image_runs_the_serve_command_as_an_unprivileged_user():
    stage = runtime_stage()
    (user,) = [args for keyword, args in stage if keyword == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    (entrypoint,) = [exec_form(args) for keyword, args in stage if keyword == "ENTRYPOINT"]
    (command,) = [exec_form(args) for keyword, args in stage if keyword == "CMD"]
    assert entrypoint + command == SERVE
    assert ("EXPOSE", "8000") in stage
    assert any(keyword == "VOLUME" and "/var/lib/lunaris" in args for keyword, args in stage)
    env = " ".join(args for keyword, args in stage if keyword == "ENV")
    assert "LUNARIS_DATA_DIR=/var/lib/lunaris" in env


def test_the_builder_installs_from_the_lock_with_the_pinned_uv():
    steps = instructions(DOCKER / "Dockerfile")
    pinned = re.search(r'^UV_VERSION = "([^"]+)"', (ROOT / "scripts/dev.py").read_text(), re.M)
    assert pinned is not None
    assert ("ARG", f"UV_VERSION={pinned.group(1)}") in steps
    syncs = [args for keyword, args in steps if keyword == "RUN" and "uv sync" in args]
    assert syncs
    assert all("--locked" in args and "--no-dev" in args for args in syncs)
    # Build and run-time stages share one Python, so the venv's interpreter links hold.
    bases = [args for keyword, args in steps if keyword == "FROM"]
    assert len(bases) == 2
    assert len({base.split()[0] for base in bases}) == 1


def test_the_build_context_holds_what_the_dockerfile_copies():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    included = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    assert "*" in ignore  # everything else (the venv, data, .git) stays out
    for keyword, args in instructions(DOCKER / "Dockerfile"):
        if keyword == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert any(source == path or source.startswith(f"{path}/") for path in included)
                assert (ROOT / source).exists()


def test_the_healthcheck_asks_healthz_with_the_standard_library(live_server):
    (healthcheck,) = [args for keyword, args in runtime_stage() if keyword == "HEALTHCHECK"]
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    script = argv[2]
    assert "curl" not in script
    assert "wget" not in script
    assert "http://127.0.0.1:8000/healthz" in script

    def probe(port: int) -> int:
        here = script.replace(":8000/", f":{port}/")
        return subprocess.run([sys.executable, "-c", here], timeout=30, check=False).returncode

    assert probe(int(live_server.base_url.rsplit(":", 1)[1])) == 0
    assert probe(free_port()) != 0  # nothing listens there


def compose_file() -> dict:
    loaded = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_compose_file_runs_postgresql_and_the_server():
    compose = compose_file()
    db, server = compose["services"]["db"], compose["services"]["server"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]  # a named volume, kept across re-creations

    assert server["depends_on"]["db"]["condition"] == "service_healthy"
    assert server["build"]["dockerfile"] == "infra/docker/Dockerfile"
    assert (DOCKER / server["build"]["context"]).resolve() == ROOT
    env = server["environment"]
    assert env["LUNARIS_ENV"] == "prod"
    assert env["LUNARIS_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert re.fullmatch(r"\$\{LUNARIS_SECRET_KEY:\?.+\}", env["LUNARIS_SECRET_KEY"])
    assert len(server["ports"]) == 1
    assert "/healthz" in " ".join(server["healthcheck"]["test"])


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        version = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if version.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.skipif(compose_command() is None, reason="no docker compose here")
def test_compose_validates_the_file_and_requires_the_secrets(tmp_path):
    no_env_file = tmp_path / "empty.env"  # a developer's infra/docker/.env must not count
    no_env_file.write_text("")
    command = [
        *(compose_command() or []),
        "--env-file",
        str(no_env_file),
        "-f",
        str(DOCKER / "compose.yaml"),
        "config",
    ]
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED}

    def config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )

    valid = config({**clean, **REQUIRED})
    assert valid.returncode == 0, valid.stderr
    resolved = yaml.safe_load(valid.stdout)
    env = resolved["services"]["server"]["environment"]
    assert env["LUNARIS_SECRET_KEY"] == REQUIRED["LUNARIS_SECRET_KEY"]
    assert REQUIRED["POSTGRES_PASSWORD"] in env["LUNARIS_DATABASE_URL"]

    for missing in REQUIRED:
        env_without = {**clean, **{k: v for k, v in REQUIRED.items() if k != missing}}
        refused = config(env_without)
        assert refused.returncode != 0
        assert missing in refused.stderr, shlex.join(command)
