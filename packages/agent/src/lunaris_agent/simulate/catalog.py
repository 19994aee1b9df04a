"""What the simulated fleet is drawn from: real winget packages (with the versions seen across
a fleet), the scan errors winget reports, and the Windows versions and naming of office PCs.
Data only."""

from lunaris_protocol import ScanError

# Identifier, name, installed versions seen across the fleet ("|"-separated), available.
# Ids without a dot are Microsoft Store ids; an id ending in "…" is one winget truncated.
CATALOG: tuple[tuple[str, str, str, str], ...] = (
    ("Mozilla.Firefox", "Mozilla Firefox (x64 en-US)", "131.0.3|132.0.2", "133.0"),
    ("Google.Chrome", "Google Chrome", "130.0.6723.117|131.0.6778.86", "131.0.6778.109"),
    ("Microsoft.Edge", "Microsoft Edge", "130.0.2849.80", "131.0.2903.51"),
    ("7zip.7zip", "7-Zip 23.01 (x64)", "23.01|22.01", "24.08"),
    ("Microsoft.VisualStudioCode", "Microsoft Visual Studio Code", "1.94.2|1.95.1", "1.95.3"),
    ("Notepad++.Notepad++", "Notepad++ (64-bit x64)", "8.6.9|8.7", "8.7.1"),
    ("VideoLAN.VLC", "VLC media player", "3.0.20|3.0.18", "3.0.21"),
    ("Zoom.Zoom", "Zoom Workplace (64-bit)", "6.1.11.45504|6.2.5.50876", "6.2.10.51437"),
    ("Microsoft.Teams", "Microsoft Teams", "Unknown|24277.3502.3161.3007", "24295.605.3225.8804"),
    ("Microsoft.Office", "Microsoft 365 - en-us", "16.0.17928.20156", "16.0.18129.20116"),
    ("Microsoft.OneDrive", "Microsoft OneDrive", "24.186.0915.0001", "24.201.1006.0005"),
    ("Git.Git", "Git", "2.46.2|2.47.0", "2.47.1"),
    ("Python.Python.3.12", "Python 3.12.6 (64-bit)", "3.12.6|3.12.7", "3.12.8"),
    ("Python.Python.3.11", "Python 3.11.7 (64-bit)", "3.11.7|3.11.8", "3.11.9"),
    ("Microsoft.DotNet.DesktopRuntime.8", ".NET Desktop Runtime 8.0.10", "8.0.8|8.0.10", "8.0.11"),
    ("Microsoft.DotNet.DesktopRuntime.6", ".NET Desktop Runtime 6.0.33", "6.0.33", "6.0.36"),
    ("Microsoft.DotNet.AspNetCore.8", "ASP.NET Core Runtime 8.0.10", "8.0.10", "8.0.11"),
    ("Microsoft.VCRedist.2015+.x64", "VC++ 2015-2022 Redist x64", "14.40.33810.0", "14.42.34433.0"),
    ("Microsoft.VCRedist.2015+.x86", "VC++ 2015-2022 Redist x86", "14.38.33135.0", "14.42.34433.0"),
    ("Microsoft.DotNet.HostingBundl…", "ASP.NET Core Hosting Bundle", "8.0.8", "8.0.11"),
    ("Microsoft.VisualStudio.2022.Bu…", "Visual Studio Build Tools 2022", "17.11.5", "17.12.0"),
    ("Adobe.Acrobat.Reader.64-bit", "Adobe Acrobat (64-bit)", "24.004.20220", "24.005.20307"),
    ("Foxit.FoxitReader", "Foxit PDF Reader", "2024.3.0.26795", "2024.4.0.27683"),
    ("Discord.Discord", "Discord", "1.0.9164|1.0.9171", "1.0.9173"),
    ("Spotify.Spotify", "Spotify", "1.2.48.405.gf2c48e6f", "1.2.50.335.g5e2860a8"),
    ("SlackTechnologies.Slack", "Slack", "4.40.126|4.41.97", "4.41.105"),
    ("Cisco.Webex", "Webex", "44.8.0.30404", "44.10.1.31028"),
    ("Citrix.Workspace", "Citrix Workspace 2405", "24.5.0.102", "24.9.10.28"),
    ("TeamViewer.TeamViewer", "TeamViewer", "< 15.58.5|15.57.5", "15.59.3"),
    ("Microsoft.PowerToys", "PowerToys (Preview) x64", "0.85.1", "0.86.0"),
    ("Microsoft.PowerShell", "PowerShell 7-x64", "7.4.5", "7.4.6"),
    ("Microsoft.WindowsTerminal", "Windows Terminal", "1.20.11781.0", "1.21.3231.0"),
    ("Oracle.JavaRuntimeEnvironment", "Java 8 Update 421 (64-bit)", "8.0.4210.9", "8.0.4310.10"),
    ("EclipseAdoptium.Temurin.21.JDK", "Temurin JDK 21.0.4+7 (x64)", "21.0.4.7", "21.0.5.11"),
    ("OpenJS.NodeJS.LTS", "Node.js", "20.17.0|20.18.0", "22.11.0"),
    ("Docker.DockerDesktop", "Docker Desktop", "4.34.2|4.35.1", "4.36.0"),
    ("Postman.Postman", "Postman x64", "11.14.0", "11.19.0"),
    ("JetBrains.IntelliJIDEA.Community", "IntelliJ IDEA CE 2024.2.3", "2024.2.3", "2024.3"),
    ("Microsoft.AzureCLI", "Microsoft Azure CLI (64-bit)", "2.65.0", "2.67.0"),
    ("Amazon.AWSCLI", "AWS Command Line Interface v2", "2.18.10", "2.22.4"),
    ("Hashicorp.Terraform", "Terraform", "1.9.7", "1.10.0"),
    ("Microsoft.Azure.StorageExplorer", "Microsoft Azure Storage Explorer", "1.35.0", "1.36.2"),
    ("Wireshark.Wireshark", "Wireshark 4.4.0 x64", "4.4.0", "4.4.2"),
    ("WinSCP.WinSCP", "WinSCP 6.3.5", "6.3.5", "6.3.6"),
    ("PuTTY.PuTTY", "PuTTY release 0.81 (64-bit)", "0.81.0.0", "0.82.0.0"),
    ("WinMerge.WinMerge", "WinMerge 2.16.42.1 x64", "2.16.42.1", "2.16.44"),
    ("Mozilla.Thunderbird", "Mozilla Thunderbird (x64 en-US)", "128.3.1esr", "128.5.0esr"),
    ("TheDocumentFoundation.LibreOffice", "LibreOffice 24.8.2.1", "24.8.2.1", "24.8.3.2"),
    ("GIMP.GIMP", "GIMP 2.10.36", "2.10.36", "2.10.38"),
    ("Inkscape.Inkscape", "Inkscape", "1.3.2", "1.4"),
    ("OBSProject.OBSStudio", "OBS Studio", "30.1.2", "30.2.3"),
    ("Audacity.Audacity", "Audacity 3.6.4", "3.6.4", "3.7.0"),
    ("KeePassXCTeam.KeePassXC", "KeePassXC", "2.7.8", "2.7.9"),
    ("Bitwarden.Bitwarden", "Bitwarden", "2024.9.0", "2024.11.1"),
    ("voidtools.Everything", "Everything 1.4.1.1024 (x64)", "1.4.1.1024", "1.4.1.1026"),
    ("ShareX.ShareX", "ShareX", "16.1.0", "17.0.0"),
    ("RARLab.WinRAR", "WinRAR 7.00 (64-bit)", "7.00.0", "7.01.0"),
    ("Logitech.OptionsPlus", "Logi Options+", "1.80.641108", "1.83.662045"),
    ("Dell.CommandUpdate", "Dell Command | Update for Windows Universal", "5.3.0", "5.4.0"),
    ("Lenovo.SystemUpdate", "Lenovo System Update", "5.08.02.25", "5.08.03.59"),
    ("9NBLGGH4NNS1", "App Installer", "1.23.1911.0", "1.24.25200.0"),
    ("9NKSQGP7F2NH", "WhatsApp", "2.2442.6.0", "2.2446.3.0"),
    ("9WZDNCRFJ3TJ", "Netflix", "6.99.5.0", "6.99.6.0"),
    ("9WZDNCRFHVJL", "OneNote for Windows 10", "16001.14326.22094.0", "16001.14326.22134.0"),
)

EXPLICIT_TARGETING = frozenset({"Discord.Discord", "Spotify.Spotify", "Microsoft.Edge"})
"""Updates winget lists but installs only when asked for by id."""

SCAN_ERRORS = (
    ScanError(code="0x8A15000F", message="Data required by the source is missing"),
    ScanError(code="0x8A15000B", message="The configured source information is corrupt"),
    ScanError(code="timeout", message="winget did not finish within 300 s"),
)

OS_VERSIONS = (
    "Windows 11 Pro 23H2 (10.0.22631.4460)",
    "Windows 11 Pro 24H2 (10.0.26100.2314)",
    "Windows 11 Enterprise 23H2 (10.0.22631.4602)",
    "Windows 11 Enterprise 24H2 (10.0.26100.2605)",
    "Windows 10 Enterprise 22H2 (10.0.19045.5131)",
    "Windows 10 Pro 22H2 (10.0.19045.5247)",
)
DEPARTMENTS = ("FIN", "HR", "ENG", "OPS", "MKT", "SAL", "IT")
