"""``files.wxs``: the WiX source for the bundle's files, one component per file, generated
from the bundle (what WiX's heat does) with ids derived from the paths."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Final
from xml.etree import ElementTree as ET

WIX_NAMESPACE: Final = "http://schemas.microsoft.com/wix/2006/wi"
AUTHORED_FILES: Final = frozenset({"python/python.exe"})
"""Files lunaris-agent.wxs authors itself: the service belongs to python.exe's component."""
DIRECTORY_IDS: Final = {PurePosixPath("."): "INSTALLDIR", PurePosixPath("python"): "PYTHONDIR"}
"""Bundle folders that lunaris-agent.wxs defines; files.wxs refers to them."""


def write_files_wxs(bundle: Path, path: Path) -> None:
    fragment = files_fragment(bundle, authored=AUTHORED_FILES, directory_ids=DIRECTORY_IDS)
    ET.ElementTree(fragment).write(path, encoding="utf-8", xml_declaration=True)


def files_fragment(
    bundle: Path, *, authored: Iterable[str], directory_ids: Mapping[PurePosixPath, str]
) -> ET.Element:
    """A WiX fragment with one component per file (the file is its key path), in the
    ``BundleFiles`` component group; what heat does, with ids derived from the paths, so the
    same tree gives the same ids in every build."""
    ET.register_namespace("", WIX_NAMESPACE)
    wix = ET.Element(_wix("Wix"))
    fragment = ET.SubElement(wix, _wix("Fragment"))
    group = ET.SubElement(fragment, _wix("ComponentGroup"), Id="BundleFiles")
    directories: dict[PurePosixPath, ET.Element] = {}
    skipped = set(authored)

    def directory(path: PurePosixPath) -> ET.Element:
        if path not in directories:
            if path in directory_ids:
                element = ET.SubElement(fragment, _wix("DirectoryRef"), Id=directory_ids[path])
            else:
                element = ET.SubElement(
                    directory(path.parent), _wix("Directory"), Id=_id("dir", path), Name=path.name
                )
            directories[path] = element
        return directories[path]

    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        relative = PurePosixPath(path.relative_to(bundle).as_posix())
        if str(relative) in skipped:
            continue
        component = ET.SubElement(
            directory(relative.parent),
            _wix("Component"),
            Id=_id("cmp", relative),
            Guid="*",
            Win64="yes",
        )
        ET.SubElement(
            component,
            _wix("File"),
            Id=_id("fil", relative),
            Name=relative.name,
            Source=f"$(var.BundleDir)/{relative}",
            KeyPath="yes",
        )
        ET.SubElement(group, _wix("ComponentRef"), Id=component.get("Id", ""))
    return wix


def _wix(tag: str) -> str:
    return f"{{{WIX_NAMESPACE}}}{tag}"


def _id(prefix: str, path: PurePosixPath) -> str:
    """An MSI identifier (letters, digits, underscores; at most 72) unique to the path."""
    digest = hashlib.sha1(str(path).casefold().encode(), usedforsecurity=False)
    return f"{prefix}{digest.hexdigest()[:32].upper()}"
