"""``lunaris-agent``: simulate a fleet, parse a saved winget scan, print the version."""

import argparse
import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from lunaris_agent import __version__
from lunaris_agent.client import check_api_url
from lunaris_agent.simulate import CorruptStateFile, SimulationOptions, simulate

log = logging.getLogger("lunaris_agent")

NumberT = TypeVar("NumberT", int, float)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lunaris-agent", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    simulate_parser = commands.add_parser(
        "simulate", help="run virtual agents against a server (demo, load and e2e tests)"
    )
    _add_simulate_arguments(simulate_parser)
    simulate_parser.set_defaults(handler=_simulate)

    scan = commands.add_parser("scan", help="parse saved `winget upgrade` output")
    scan.add_argument("--json", action="store_true", required=True, help="print JSON rows")
    scan.add_argument("--from-file", type=Path, required=True, metavar="FILE")
    scan.set_defaults(handler=_scan)

    version = commands.add_parser("version", help="print the agent version")
    version.set_defaults(handler=_version)
    return parser


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
        "--once", action="store_true", help="register, one heartbeat and one report; then exit"
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
        "--concurrency", type=_positive(int), default=20, help="requests in flight (default 20)"
    )


def _simulate(args: argparse.Namespace) -> int:
    options = SimulationOptions(
        api_url=args.api_url,
        enrollment_secret=args.enrollment_secret,
        state_dir=args.state_dir,
        count=args.count,
        once=args.once,
        duration_s=args.duration,
        heartbeat_interval_s=args.heartbeat_interval,
        scan_interval_s=args.scan_interval,
        concurrency=args.concurrency,
    )
    try:
        stats = asyncio.run(simulate(options))
    except CorruptStateFile as error:
        log.error("%s", error)
        return 2
    return 1 if stats.failed_devices else 0


def _scan(args: argparse.Namespace) -> int:
    from lunaris_agent.scan_cli import scan_from_file

    return scan_from_file(args.from_file)


def _version(_args: argparse.Namespace) -> int:
    print(f"lunaris-agent {__version__}")
    return 0


def _api_url(text: str) -> str:
    try:
        return check_api_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
