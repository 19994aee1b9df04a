"""``lunaris-agent``: the agent in the foreground or once, its configuration and status, the
Windows service, a scan and an inventory that send nothing, and the fleet simulator."""

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from lunaris_agent import __version__
from lunaris_agent.client import check_api_url
from lunaris_agent.simulate.fleet import CorruptStateFile, SimulationOptions, simulate
from lunaris_agent.simulate.inventory import DEFAULT_APPS
from lunaris_protocol.tags import normalise_tags, split_tags

log = logging.getLogger("lunaris_agent")

NumberT = TypeVar("NumberT", int, float)
ValueT = TypeVar("ValueT")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lunaris-agent", description=__doc__)
    _add_shared_options(parser)
    # The same options after the command too (`once --config FILE`); a subcommand's parser
    # sets only what it was given, so a value given before the command stands.
    shared = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    _add_shared_options(shared)
    commands = _Commands(
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), shared
    )

    run = commands.add_parser("run", help="run in the foreground until Ctrl-C")
    run.set_defaults(handler=_run)

    once = commands.add_parser(
        "once", help="register if needed, heartbeat, scan, report, then exit (non-zero on failure)"
    )
    once.set_defaults(handler=_once)

    configure = commands.add_parser(
        "configure", help="write config.json: the server and the enrollment secret"
    )
    configure.add_argument(
        "--api-url", type=_api_url, required=True, help="e.g. https://lunaris.example.com/api"
    )
    configure.add_argument(
        "--enrollment-secret",
        default=os.environ.get("LUNARIS_ENROLLMENT_SECRET"),
        help="default: $LUNARIS_ENROLLMENT_SECRET, which keeps it out of the process list",
    )
    configure.add_argument("--winget-path", type=Path, help="run this instead of winget")
    configure.add_argument("--ca-bundle", type=Path, help="trust this CA bundle (PEM)")
    configure.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="do not verify the server's certificate",
    )
    configure.add_argument(
        "--tags",
        type=_argument(lambda text: normalise_tags(split_tags(text))),
        help='the device\'s tags, comma-separated: berlin,finance,kiosk ("" removes them; '
        "default: keep the configured ones)",
    )
    configure.add_argument(
        "--update-publisher",
        metavar="SUBJECT",
        type=_argument(_publisher),
        help='the signer an agent update must carry, "CN=Contoso Ltd, O=Contoso Ltd, C=DE" '
        '("" removes it; default: keep the configured one)',
    )
    configure.set_defaults(handler=_configure)

    status = commands.add_parser("status", help="print the config, the last contact and the spool")
    status.set_defaults(handler=_status)

    scan = commands.add_parser(
        "scan", help="run winget (or parse saved output) and print what it lists; sends nothing"
    )
    scan.add_argument("--json", action="store_true", help="print the scan contract as JSON")
    scan.add_argument("--from-file", type=Path, metavar="FILE", help="parse saved winget output")
    scan.add_argument("--winget-path", type=Path, help="run this instead of winget")
    scan.set_defaults(handler=_scan)

    inventory = commands.add_parser(
        "inventory",
        help="run winget list (or parse saved output) and print what is installed; sends nothing",
    )
    inventory.add_argument("--json", action="store_true", help="print the inventory as JSON")
    inventory.add_argument(
        "--from-file", type=Path, metavar="FILE", help="parse saved winget list output"
    )
    inventory.add_argument("--winget-path", type=Path, help="run this instead of winget")
    inventory.set_defaults(handler=_inventory)

    service = commands.add_parser("service", help="manage the Windows service (Windows only)")
    service.add_argument("action", choices=("install", "remove", "start", "stop", "host"))
    service.set_defaults(handler=_service)

    simulate_parser = commands.add_parser(
        "simulate", help="run virtual agents against a server (demo, load and e2e tests)"
    )
    _add_simulate_arguments(simulate_parser)
    simulate_parser.set_defaults(handler=_simulate)

    version = commands.add_parser("version", help="print the agent version")
    version.set_defaults(handler=_version)
    return parser


def _add_shared_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="the agent's config.json (default: C:\\ProgramData\\LunarisAgent\\config.json "
        "on Windows, the platform's state directory elsewhere)",
    )


class _Commands:
    """The subcommands' parsers, each given the shared options."""

    def __init__(
        self,
        subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]",
        shared: argparse.ArgumentParser,
    ) -> None:
        self._subparsers = subparsers
        self._shared = shared

    def add_parser(self, name: str, *, help: str) -> argparse.ArgumentParser:
        return self._subparsers.add_parser(name, help=help, parents=[self._shared])


def _config_path(args: argparse.Namespace) -> Path:
    from lunaris_agent.config import default_config_path

    path: Path = args.config or default_config_path()
    return path


def _run(args: argparse.Namespace) -> int:
    from lunaris_agent import logs, runtime

    config_path = _config_path(args)
    logs.configure(_log_dir(config_path), foreground=True, verbose=args.verbose)
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    return runtime.run(stop, config_path=config_path)


def _once(args: argparse.Namespace) -> int:
    from lunaris_agent import logs, runtime

    config_path = _config_path(args)
    logs.configure(_log_dir(config_path), foreground=True, verbose=args.verbose)
    return runtime.once(config_path=config_path)


def _log_dir(config_path: Path) -> Path | None:
    """The configured log directory; none (console only) while the config cannot be read,
    so that error is shown rather than hidden behind another."""
    from lunaris_agent.config import ConfigError, load

    try:
        return load(config_path).log_dir
    except ConfigError:
        return None


def _configure(args: argparse.Namespace) -> int:
    from lunaris_agent import config

    _console_logging(args)
    path = _config_path(args)
    try:
        written = config.create(
            path,
            api_url=args.api_url,
            enrollment_secret=args.enrollment_secret,
            winget_path=args.winget_path,
            verify_tls=not args.insecure_skip_tls_verify,
            ca_bundle=args.ca_bundle,
            tags=args.tags,
            update_publisher=args.update_publisher,
        )
    except config.ConfigError as error:
        log.error("%s", error)
        return 2
    if written.device_token is None and written.enrollment_secret is None:
        log.warning("no enrollment secret given: the agent cannot register until it has one")
    print(f"wrote {written.path} (device {written.device_id})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from lunaris_agent.config import ConfigError, load
    from lunaris_agent.status import describe

    _console_logging(args)
    try:
        loaded = load(_config_path(args))
    except ConfigError as error:
        log.error("%s", error)
        return 2
    print("\n".join(describe(loaded)))
    return 0


def _service(args: argparse.Namespace) -> int:
    if sys.platform == "win32":
        from lunaris_agent.windows import service, service_control

        if args.action == "host":
            return service.host()
        return service_control.control(args.action, config_path=args.config)
    print("the Windows service exists on Windows only; use `lunaris-agent run`", file=sys.stderr)
    return 2


def _console_logging(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise


def _add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    api_url = os.environ.get("LUNARIS_API_URL")
    secret = os.environ.get("LUNARIS_ENROLLMENT_SECRET")
    parser.add_argument(
        "--api-url",
        type=_api_url,
        default=api_url,
        required=api_url is None,
        help="e.g. http://127.0.0.1:8000/api (default: $LUNARIS_API_URL)",
    )
    parser.add_argument(
        "--enrollment-secret",
        default=secret,
        required=secret is None,
        help="default: $LUNARIS_ENROLLMENT_SECRET, which keeps it out of the process list",
    )
    parser.add_argument("--count", type=_positive(int), default=10, help="devices (default 10)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path("simulated-agents"),
        help="where device identities are kept between runs (default ./simulated-agents)",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "--once",
        action="store_true",
        help="register, one heartbeat, one report and one inventory; then exit",
    )
    length.add_argument(
        "--duration", type=_positive(float), metavar="SECONDS", help="default: until Ctrl-C"
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=_positive(float),
        metavar="SECONDS",
        help="default: what the server asks for",
    )
    parser.add_argument(
        "--scan-interval",
        type=_positive(float),
        metavar="SECONDS",
        help="default: what the server asks for",
    )
    parser.add_argument(
        "--inventory-interval",
        type=_positive(float),
        metavar="SECONDS",
        help="how often at most each device sends its software inventory "
        "(default: what the server asks for)",
    )
    parser.add_argument(
        "--apps",
        type=_positive(int),
        default=DEFAULT_APPS,
        help=f"programs installed per device, a fifth more or less (default {DEFAULT_APPS})",
    )
    parser.add_argument(
        "--concurrency", type=_positive(int), default=20, help="requests in flight (default 20)"
    )


def _simulate(args: argparse.Namespace) -> int:
    _console_logging(args)
    options = SimulationOptions(
        api_url=args.api_url,
        enrollment_secret=args.enrollment_secret,
        state_dir=args.state_dir,
        count=args.count,
        once=args.once,
        duration_s=args.duration,
        heartbeat_interval_s=args.heartbeat_interval,
        scan_interval_s=args.scan_interval,
        inventory_interval_s=args.inventory_interval,
        apps=args.apps,
        concurrency=args.concurrency,
    )
    try:
        stats = asyncio.run(simulate(options))
    except CorruptStateFile as error:
        log.error("%s", error)
        return 2
    return 1 if stats.failed_devices else 0


def _scan(args: argparse.Namespace) -> int:
    from lunaris_agent.scan_cli import scan

    _console_logging(args)
    return scan(from_file=args.from_file, winget_path=args.winget_path, as_json=args.json)


def _inventory(args: argparse.Namespace) -> int:
    from lunaris_agent.scan_cli import inventory

    _console_logging(args)
    return inventory(from_file=args.from_file, winget_path=args.winget_path, as_json=args.json)


def _version(_args: argparse.Namespace) -> int:
    print(f"lunaris-agent {__version__}")
    return 0


def _argument(parse: Callable[[str], ValueT]) -> Callable[[str], ValueT]:
    """An argparse type from a function that raises ValueError saying what is wrong."""

    def checked(text: str) -> ValueT:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return checked


_api_url = _argument(check_api_url)


def _publisher(text: str) -> str:
    """A signer's subject, checked; blank stays blank (it removes the configured one)."""
    from lunaris_agent.config import check_publisher

    return check_publisher(text) or ""


def _positive(kind: Callable[[str], NumberT]) -> Callable[[str], NumberT]:
    """An argparse type: a number above zero."""

    def parse(text: str) -> NumberT:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be above zero: {text!r}")
        return value

    return parse
