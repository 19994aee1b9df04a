"""The container image and the compose file: what they promise, checked without a Docker
engine. ``docker compose config`` (or ``docker-compose config``) validates the compose file
where either is installed; the structure is checked with PyYAML in any case."""

import importlib.util
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
INSTALLER_COMMON = ROOT / "infra" / "installer" / "installer_common.py"
ENTRYPOINT = DOCKER / "lunaris-entrypoint"
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


def test_the_image_runs_the_serve_command_as_an_unprivileged_user(tmp_path):
    stage = runtime_stage()
    (user,) = [args for keyword, args in stage if keyword == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    (entry,) = [exec_form(args) for keyword, args in stage if keyword == "ENTRYPOINT"]
    (command,) = [exec_form(args) for keyword, args in stage if keyword == "CMD"]
    # The entry point, on PATH, runs lunaris-server with the command's arguments.
    assert ("COPY", f"infra/docker/{entry[0]} /usr/local/bin/{entry[0]}") in stage
    _, received = entrypoint(tmp_path, *entry[1:], *command)
    assert ["lunaris-server", *received] == SERVE
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
    bases = {args.split()[-1]: args.split()[0] for keyword, args in steps if keyword == "FROM"}
    assert list(bases) == ["builder", "agent-msi", "runtime"]
    assert bases["builder"] == bases["runtime"]


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions by the stage's name (``FROM image AS name``)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for keyword, args in instructions(DOCKER / "Dockerfile"):
        if keyword == "FROM":
            current = found.setdefault(args.split()[-1], [])
        elif found:
            current.append((keyword, args))
    return found


def environment(stage: list[tuple[str, str]]) -> dict[str, str]:
    pairs = [pair for keyword, args in stage if keyword == "ENV" for pair in shlex.split(args)]
    return dict(pair.split("=", 1) for pair in pairs)


def test_the_image_offers_the_agent_msi_its_build_stage_makes(monkeypatch, tmp_path):
    from lunaris_server.agents import files
    from lunaris_server.core.settings import Settings

    msi_stage = stages()["agent-msi"]
    (apt,) = [args for keyword, args in msi_stage if keyword == "RUN" and "apt-get" in args]
    assert {"wixl", "msitools", "osslsigncode"} <= set(apt.split())
    (build,) = [args for keyword, args in msi_stage if "infra/installer/build" in args]
    words = shlex.split(build.partition("infra/installer/build")[2])
    built_into = Path(words[words.index("--output-dir") + 1])
    pinned_uv = re.search(r'^UV_VERSION = "([^"]+)"', (ROOT / "scripts/dev.py").read_text(), re.M)
    assert pinned_uv is not None
    assert ("ARG", f"UV_VERSION={pinned_uv.group(1)}") in msi_stage

    runtime = stages()["runtime"]
    copies = [shlex.split(args) for keyword, args in runtime if keyword == "COPY"]
    (copy,) = [words for words in copies if words[0] == "--from=agent-msi"]
    assert Path(copy[1]) == built_into
    # The entry point takes the MSI from where the image holds it, outside the volume...
    image_msis = re.search(r"LUNARIS_IMAGE_AGENT_MSI_DIR:-([^}]+)}", ENTRYPOINT.read_text())
    assert image_msis is not None
    assert Path(copy[2]) == Path(image_msis.group(1))
    (volume,) = [exec_form(args) for keyword, args in runtime if keyword == "VOLUME"]
    assert not any(Path(copy[2]).is_relative_to(path) for path in volume)
    # ...into the downloads folder the server uses, which is in the volume, with the uploads.
    (workdir,) = [args for keyword, args in runtime if keyword == "WORKDIR"]
    for name in os.environ:
        if name.startswith("LUNARIS_"):
            monkeypatch.delenv(name)
    for name, value in environment(runtime).items():
        if name.startswith("LUNARIS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    downloads = Path(workdir) / Settings().resolved_agent_downloads_dir
    assert any(downloads.is_relative_to(path) for path in volume)
    # The server takes what the build names its MSI for the version the build was given.
    spec = importlib.util.spec_from_file_location("installer_common", INSTALLER_COMMON)
    assert spec is not None
    assert spec.loader is not None
    installer_common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installer_common)
    assert files.version_of(installer_common.msi_file_name("0.1.7")) == "0.1.7"


def entrypoint(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Runs the entry point with the image's MSI folder in ``tmp_path/image`` and a stand-in
    lunaris-server that records its arguments; from ``tmp_path/work``."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    for folder in (bin_dir, work):
        folder.mkdir(exist_ok=True)
    received = tmp_path / "received"
    server = bin_dir / "lunaris-server"
    server.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {shlex.quote(str(received))}\n')
    server.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LUNARIS_")}
    result = subprocess.run(
        [str(ENTRYPOINT), *args],
        env={
            **clean,
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "LUNARIS_IMAGE_AGENT_MSI_DIR": str(tmp_path / "image"),
            **(env or {}),
        },
        cwd=work,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, received.read_text().splitlines() if received.exists() else []


def image_msi(tmp_path: Path, name: str = "lunaris-agent-0.1.7-x64.msi") -> bytes:
    content = f"the MSI {name}".encode()
    (tmp_path / "image").mkdir(exist_ok=True)
    (tmp_path / "image" / name).write_bytes(content)
    return content


def test_the_entry_point_adds_the_images_msi_once_and_runs_the_server(tmp_path):
    content = image_msi(tmp_path)
    downloads = tmp_path / "data" / "downloads"
    env = {"LUNARIS_DATA_DIR": str(tmp_path / "data")}

    result, received = entrypoint(tmp_path, "serve", "--workers", "2", env=env)

    assert received == ["serve", "--workers", "2"]
    assert (downloads / "lunaris-agent-0.1.7-x64.msi").read_bytes() == content
    assert result.stderr == (
        f"lunaris-entrypoint: added the image's lunaris-agent-0.1.7-x64.msi to {downloads}\n"
    )
    # A version never changes: one of that name stays as it is (an upload, or an older image's).
    uploaded = b"an admin's upload of 0.1.7"
    (downloads / "lunaris-agent-0.1.7-x64.msi").write_bytes(uploaded)
    result, received = entrypoint(tmp_path, "serve", env=env)
    assert (result.stderr, received) == ("", ["serve"])
    assert (downloads / "lunaris-agent-0.1.7-x64.msi").read_bytes() == uploaded
    assert sorted(p.name for p in downloads.iterdir()) == ["lunaris-agent-0.1.7-x64.msi"]


def test_the_server_starts_when_the_msi_cannot_be_added(tmp_path):
    image_msi(tmp_path)
    not_a_folder = tmp_path / "downloads"
    not_a_folder.write_text("")
    result, received = entrypoint(
        tmp_path, *SERVE[1:], env={"LUNARIS_AGENT_DOWNLOADS_DIR": str(not_a_folder)}
    )
    assert received == SERVE[1:]
    assert result.stderr == (
        "lunaris-entrypoint: could not add the image's lunaris-agent-0.1.7-x64.msi to "
        f"{not_a_folder}\n"
    )


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"LUNARIS_DATA_DIR": "elsewhere"},
        {"LUNARIS_DATA_DIR": "{tmp}/data"},
        {"LUNARIS_DATA_DIR": "elsewhere", "LUNARIS_AGENT_DOWNLOADS_DIR": "{tmp}/msi"},
        {"LUNARIS_AGENT_DOWNLOADS_DIR": "msi"},
    ],
)
def test_the_entry_point_adds_it_where_the_server_looks(tmp_path, monkeypatch, variables):
    from lunaris_server.core.settings import Settings

    image_msi(tmp_path)
    env = {name: value.format(tmp=tmp_path) for name, value in variables.items()}
    entrypoint(tmp_path, "serve", env=env)
    for name in os.environ:
        if name.startswith("LUNARIS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path / "work")
    folder = Settings().resolved_agent_downloads_dir
    assert (folder / "lunaris-agent-0.1.7-x64.msi").is_file()


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
