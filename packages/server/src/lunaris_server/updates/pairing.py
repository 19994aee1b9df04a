"""How a device's list is diffed where keys differ: what is left unmatched of one package on
both sides moved to another version (an upgrade), not a removal and a new install. Update
reports and inventories both pair their leftovers this way."""

from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from lunaris_server.core.versions import sort_key

Key = TypeVar("Key", bound=Hashable)
Group = TypeVar("Group", bound=Hashable)
Stored = TypeVar("Stored")
Incoming = TypeVar("Incoming")


@dataclass(slots=True)
class Pairing(Generic[Stored, Incoming]):
    moved: list[tuple[Stored, Incoming]] = field(default_factory=list)
    """A stored row and the reported one it became, oldest versions paired first."""
    new: list[Incoming] = field(default_factory=list)
    gone: list[Stored] = field(default_factory=list)


def pair_leftovers(
    stored: dict[Key, Stored],
    incoming: dict[Key, Incoming],
    *,
    group: Callable[[Key], Group],
    version: Callable[[Key], str],
) -> Pairing[Stored, Incoming]:
    """Pairs the rows of one group (a package and source) on both sides in winget's version
    order; what has no partner is new or gone. The keys matched exactly are the caller's."""
    candidates: dict[Group, list[tuple[Key, Stored]]] = defaultdict(list)
    for key, row in sorted(stored.items(), key=lambda item: sort_key(version(item[0]))):
        candidates[group(key)].append((key, row))
    pairing: Pairing[Stored, Incoming] = Pairing()
    paired: set[Key] = set()
    for key, new in sorted(incoming.items(), key=lambda item: sort_key(version(item[0]))):
        waiting = candidates.get(group(key))
        if waiting:
            old_key, old = waiting.pop(0)
            paired.add(old_key)
            pairing.moved.append((old, new))
        else:
            pairing.new.append(new)
    pairing.gone = [row for key, row in stored.items() if key not in paired]
    return pairing
