"""Builds the Lunaris Agent MSI on Linux: ``infra/installer/build [--version X.Y.Z]``.

1. The Windows Python runtime, fetched from a pinned source and verified file by file
   (:mod:`embedded_python`: pinned hashes, Authenticode signatures against pinned roots).
2. The bundle, laid out as it will be in ``C:\\Program Files\\LunarisAgent``
   (:mod:`msi_payload`): that runtime; the agent and the protocol, built as wheels from this
   tree; their dependencies as ``win_amd64`` wheels at the versions and hashes in ``uv.lock``.
3. ``files.wxs``, one component per file of the bundle (:mod:`msi_wxs`).
4. ``wixl``, then ``msibuild`` for the few tables wixl cannot author (:mod:`msi_wixl`).
5. Optionally, an Authenticode signature, checked (:mod:`msi_sign`).

This module is the command line, and runs those steps in that order; :mod:`msi_tools` finds
and runs the tools.

Progress goes to stderr; the MSI's path is printed alone on the last line of stdout.
Needs: uv (``python3 scripts/dev.py setup`` installs the pinned one), and Debian's ``wixl``,
``msitools`` and ``osslsigncode``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from embedded_python import VerificationError
from installer_common import HERE, ROOT, msi_file_name
from msi_payload import add_packages, add_runtime, python_runtime
from msi_sign import Signing, add_signing_options, sign_msi, signing_from
from msi_tools import BuildError, Tools, say, step
from msi_wixl import patch_msi, wixl
from msi_wxs import write_files_wxs

PINS: Final = HERE / "pins.toml"
MSI_VERSION: Final = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,5})")
"""ProductVersion: major.minor.build, at most 255.255.65535; a fourth field is ignored by
Windows Installer when it compares versions, so it is refused here."""


@dataclass(frozen=True)
class Options:
    version: str
    output_dir: Path
    work_dir: Path
    cache_dir: Path
    python_zip: str | None = None
    python_zip_sha256: str | None = None
    signing: Signing | None = None


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started = time.monotonic()
    try:
        msi = build(options)
    except (BuildError, VerificationError) as error:
        print(f"build: {error}", file=sys.stderr)
        return 1
    size_mb = msi.stat().st_size / 1_048_576
    say(f"built {msi.name} ({size_mb:.1f} MB) in {time.monotonic() - started:.1f} s")
    print(msi)
    return 0


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="infra/installer/build",
        description="Build dist/lunaris-agent-VERSION-x64.msi; print its path on the last line.",
    )
    parser.add_argument(
        "--version",
        help="the MSI's ProductVersion, major.minor.build (default: lunaris-agent's version); "
        "an upgrade needs a higher one",
    )
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    parser.add_argument(
        "--work-dir", type=Path, default=ROOT / "build" / "installer", help="emptied first"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "lunaris-installer",
        help="downloads, kept under their SHA-256 and checked on every use",
    )
    parser.add_argument(
        "--python-zip",
        metavar="URL_OR_PATH",
        help="python.org's python-3.X.Y-embed-amd64.zip instead of the pinned runtime",
    )
    parser.add_argument("--python-zip-sha256", metavar="HEX", help="required with --python-zip")
    add_signing_options(parser)
    args = parser.parse_args(argv)
    if (args.python_zip is None) != (args.python_zip_sha256 is None):
        parser.error("--python-zip and --python-zip-sha256 go together")
    version = args.version or agent_version()
    if not msi_version_ok(version):
        parser.error(f"--version must be major.minor.build (max 255.255.65535), not {version!r}")
    return Options(
        version=version,
        output_dir=args.output_dir.resolve(),
        work_dir=args.work_dir.resolve(),
        cache_dir=args.cache_dir.resolve(),
        python_zip=args.python_zip,
        python_zip_sha256=args.python_zip_sha256,
        signing=signing_from(args, parser),
    )


def msi_version_ok(version: str) -> bool:
    match = MSI_VERSION.fullmatch(version)
    if match is None:
        return False
    major, minor, build_number = (int(part) for part in match.groups())
    return major <= 255 and minor <= 255 and build_number <= 65535


def agent_version() -> str:
    with (ROOT / "packages" / "agent" / "pyproject.toml").open("rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    return version


def build(options: Options) -> Path:
    tools = Tools.find()
    with PINS.open("rb") as handle:
        pins = tomllib.load(handle)
    work = options.work_dir
    if work.exists():
        shutil.rmtree(work)
    bundle = work / "bundle"

    with step("Python runtime: fetch, check pinned hashes and Authenticode signatures"):
        runtime = python_runtime(
            pins,
            work / "runtime",
            cache_dir=options.cache_dir,
            python_zip=options.python_zip,
            python_zip_sha256=options.python_zip_sha256,
        )
        say(f"  {runtime.source}: Python {runtime.python_version}, {len(runtime.signers)} signed")
        for signer, count in Counter(runtime.signers.values()).items():
            say(f"    {count:3d} signed by {signer}")
        add_runtime(runtime, bundle)
    with step("packages: the agent from this tree, its dependencies as locked (win_amd64)"):
        add_packages(tools, bundle, runtime.python_version, work, version=options.version)
    with step("MSI: files.wxs, wixl, msibuild"):
        files_wxs = work / "files.wxs"
        write_files_wxs(bundle, files_wxs)
        made = wixl(tools, work, files_wxs, version=options.version)
        patch_msi(tools, made, work)
    if options.signing is not None:
        with step("Authenticode: sign the MSI, check the signature"):
            signed = work / "signed.msi"
            subject = sign_msi(tools.osslsigncode, made, signed, options.signing)
            say(f"  signed by {subject} (an agent's UPDATE_PUBLISHER)")
            made = signed
    options.output_dir.mkdir(parents=True, exist_ok=True)
    msi = options.output_dir / msi_file_name(options.version)
    partial = msi.with_suffix(".msi.partial")
    shutil.copyfile(made, partial)
    partial.replace(msi)
    return msi


if __name__ == "__main__":
    sys.exit(main())
