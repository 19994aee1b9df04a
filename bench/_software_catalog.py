"""A realistic software catalog for the inventory benchmarks: what ``winget list`` shows on
office PCs. A few dozen real winget packages (browsers, runtimes, tools) and a long tail of
less common ones, each in a handful of versions with most devices on the newest one or two,
plus ARP entries with no source, some of which are on one PC only (drivers, line-of-business
installers)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from lunaris_server.core.versions import sort_key


@dataclass(frozen=True)
class App:
    package_identifier: str
    name: str
    versions: tuple[str, ...]
    """Oldest first."""
    weights: tuple[float, ...]
    """How the devices that have it spread over its versions."""
    share: float
    """The part of the fleet that has it installed."""
    source: str | None = "winget"


REAL = [
    ("Mozilla.Firefox", "Mozilla Firefox (x64 en-US)", ("131.0.3", "132.0.2", "133.0")),
    ("Google.Chrome", "Google Chrome", ("130.0.6723.117", "131.0.6778.86", "131.0.6778.109")),
    ("Microsoft.Edge", "Microsoft Edge", ("130.0.2849.80", "131.0.2903.70", "131.0.2903.86")),
    ("7zip.7zip", "7-Zip 24.08 (x64)", ("19.00", "23.01", "24.07", "24.08")),
    ("Notepad++.Notepad++", "Notepad++ (64-bit x64)", ("8.5.8", "8.6.9", "8.7.1", "8.8.1")),
    ("Microsoft.VisualStudioCode", "Microsoft Visual Studio Code", ("1.94.2", "1.95.3")),
    ("VideoLAN.VLC", "VLC media player", ("3.0.18", "3.0.20", "3.0.21")),
    ("Zoom.Zoom", "Zoom Workplace", ("6.1.11.45504", "6.2.5.52290", "6.2.11.54006")),
    ("Git.Git", "Git", ("2.45.2", "2.46.0", "2.47.0")),
    ("Python.Python.3.12", "Python 3.12.7 (64-bit)", ("3.12.4", "3.12.6", "3.12.7")),
    ("Adobe.Acrobat.Reader.64-bit", "Adobe Acrobat (64-bit)", ("24.003.20112", "24.004.20220")),
    (
        "Microsoft.DotNet.DesktopRuntime.8",
        "Microsoft Windows Desktop Runtime - 8.0.11 (x64)",
        ("8.0.8", "8.0.10", "8.0.11"),
    ),
    (
        "Microsoft.VCRedist.2015+.x64",
        "Microsoft Visual C++ 2015-2022 Redistributable (x64)",
        ("14.38.33135.0", "14.40.33810.0", "14.42.34433.0"),
    ),
    (
        "Microsoft.VCRedist.2015+.x86",
        "Microsoft Visual C++ 2015-2022 Redistributable (x86)",
        ("14.38.33135.0", "14.40.33810.0", "14.42.34433.0"),
    ),
    ("SlackTechnologies.Slack", "Slack", ("4.39.95", "4.40.126", "4.41.97")),
    ("Microsoft.Teams", "Microsoft Teams", ("24215.1007.3082.1590", "24277.3507.3205.5228")),
    (
        "Microsoft.Office",
        "Microsoft 365 Apps for enterprise - en-us",
        ("16.0.17928.20216", "16.0.18129.20158"),
    ),
    ("Microsoft.OneDrive", "Microsoft OneDrive", ("24.201.1006.0005", "24.211.1020.0001")),
    ("Microsoft.PowerShell", "PowerShell 7.4.6.0-x64", ("7.4.5.0", "7.4.6.0")),
    ("Microsoft.WindowsTerminal", "Windows Terminal", ("1.20.11781.0", "1.21.3231.0")),
    ("Microsoft.AppInstaller", "App Installer", ("1.23.1911.0", "1.24.25200.0")),
    ("Oracle.JavaRuntimeEnvironment", "Java 8 Update 431 (64-bit)", ("8.0.4210.9", "8.0.4310.10")),
    ("WinSCP.WinSCP", "WinSCP 6.3.5", ("6.3.4", "6.3.5")),
    ("PuTTY.PuTTY", "PuTTY release 0.82 (64-bit)", ("0.81.0.0", "0.82.0.0")),
    ("Audacity.Audacity", "Audacity 3.7.0", ("3.6.4", "3.7.0")),
    ("Bitwarden.Bitwarden", "Bitwarden", ("2024.9.0", "2024.10.2")),
    ("Discord.Discord", "Discord", ("1.0.9163", "1.0.9171")),
    ("KeePassXCTeam.KeePassXC", "KeePassXC", ("2.7.8", "2.7.9")),
    ("GIMP.GIMP", "GIMP 2.10.38", ("2.10.36", "2.10.38")),
    ("TheDocumentFoundation.LibreOffice", "LibreOffice 24.8.3.2", ("24.2.7.2", "24.8.3.2")),
    ("Greenshot.Greenshot", "Greenshot 1.2.10.6", ("1.2.10.6",)),
    ("TeamViewer.TeamViewer", "TeamViewer", ("15.58.5", "15.59.3")),
    ("Cisco.Webex", "Webex", ("44.10.0.30906", "44.11.0.31172")),
    ("Foxit.FoxitReader", "Foxit PDF Reader", ("2024.3.0.26795", "2024.4.0.27683")),
    ("Microsoft.PowerToys", "PowerToys (Preview) x64", ("0.85.1", "0.86.0")),
    ("Microsoft.Sysinternals.ProcessExplorer", "Process Explorer", ("17.06",)),
    ("WiresharkFoundation.Wireshark", "Wireshark 4.4.2 x64", ("4.2.8", "4.4.1", "4.4.2")),
    ("OpenJS.NodeJS.LTS", "Node.js", ("20.18.0", "22.11.0", "22.12.0")),
    ("Docker.DockerDesktop", "Docker Desktop", ("4.35.1", "4.36.0")),
    (
        "JetBrains.IntelliJIDEA.Community",
        "IntelliJ IDEA Community Edition 2024.3",
        ("2024.2.4", "2024.3"),
    ),
]
VENDORS = [
    "Contoso", "Fabrikam", "Northwind", "Litware", "Tailspin", "Wingtip", "Adatum", "Proseware",
    "Woodgrove", "Lucerne", "Coho", "Humongous", "Trey", "Alpine", "Fourth", "Margie",
]  # fmt: skip
PRODUCTS = [
    "Viewer", "Agent", "Sync", "Client", "Studio", "Reader", "Toolkit", "Runtime", "Driver",
    "Helper", "Capture", "Backup", "Monitor", "Updater", "Connector", "Designer", "Player",
    "Scanner", "Suite", "Console",
]  # fmt: skip


def common_apps(count: int, *, seed: int = 7) -> list[App]:
    """``count`` apps, the most installed first: the real ones, then a long tail. The first
    sixty are on nearly every PC; after that the share falls off, so a PC has about 150."""
    rng = random.Random(seed)
    apps = []
    for n in range(count):
        if n < len(REAL):
            package, name, versions = REAL[n]
        else:
            vendor, product = VENDORS[n % len(VENDORS)], PRODUCTS[(n // len(VENDORS)) % 20]
            package = f"{vendor}.{product}{n:03}"
            name = f"{vendor} {product} {n}"
            major = rng.randint(1, 24)
            versions = tuple(
                f"{major}.{minor}.{rng.randint(0, 999)}"
                for minor in sorted(rng.sample(range(30), rng.randint(1, 5)))
            )
        # The newest version holds about half, the one before a quarter, and so on.
        weights = tuple(2.0**i for i in range(len(versions)))
        share = 0.98 if n < 60 else max(0.02, 0.95 * 0.99 ** (n - 60))
        # One in eight of the tail is an ARP entry (a vendor's installer, no winget source).
        arp = n >= len(REAL) and n % 8 == 0
        apps.append(
            App(
                package_identifier=f"ARP\\Machine\\X64\\{package}" if arp else package,
                name=name,
                versions=versions,
                weights=weights,
                share=share,
                source=None if arp else "winget",
            )
        )
    return apps


def unique_entry(device: int, index: int) -> App:
    """An ARP entry only one PC has: a driver or a line-of-business installer."""
    guid = f"{{{device:08X}-{index:04X}-4C3A-9E21-{device * 7919 + index:012X}}}"
    return App(
        package_identifier=f"ARP\\Machine\\X64\\{guid}",
        name=f"Line-of-business tool {device}-{index}",
        versions=(f"1.{index}.{device % 100}",),
        weights=(1.0,),
        share=0.0,
        source=None,
    )


class Keys:
    """``sort_key`` of each version, computed once."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}

    def __call__(self, version: str) -> str:
        key = self._keys.get(version)
        if key is None:
            key = self._keys[version] = sort_key(version)
        return key
