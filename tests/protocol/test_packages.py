"""The rule for the package ids winget can be asked to upgrade, shared by server and agent."""

import pytest

from lunaris_protocol.limits import MAX_IDENTIFIER
from lunaris_protocol.packages import is_targetable_id

NOT_TARGETABLE = (
    "",
    "Micro…",
    "Microsoft.Edge â€¦",
    "Vendor.AppΓÇª",
    "Vendor.App???",
    "Microsoft Edge",
    "--force",
    "Vendor.\x00App",
    "Vendor.\u202eApp",
    "V" * (MAX_IDENTIFIER + 1),
)


@pytest.mark.parametrize("package_id", NOT_TARGETABLE)
def test_ids_winget_cannot_target_are_refused(package_id: str) -> None:
    assert not is_targetable_id(package_id)


@pytest.mark.parametrize(
    "package_id", ["Git.Git", "9NBLGGH4NNS1", "Notepad++.Notepad++", "V" * MAX_IDENTIFIER]
)
def test_catalog_and_store_ids_are_targetable(package_id: str) -> None:
    # A Microsoft Store id has no dot.
    assert is_targetable_id(package_id)
