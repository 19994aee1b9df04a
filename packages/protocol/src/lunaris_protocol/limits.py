"""Size bounds shared by every body on the wire.

The server rejects anything larger with a 4xx; the agent truncates nothing silently.
"""

MAX_IDENTIFIER = 256
"""Package identifiers, device ids, secret and token strings."""

MAX_NAME = 512
"""Display names: package names, hostnames, OS descriptions."""

MAX_VERSION = 128
"""Version strings exactly as winget prints them (`< 1.4.3`, `Unknown`, ...)."""

MAX_SOURCE = 64
MAX_HOSTNAME = 255
MAX_ERROR_CODE = 64
MAX_OUTCOME = 64
"""Install outcome codes and HRESULT strings."""
MAX_MESSAGE = 4_000
MAX_UPDATES_PER_REPORT = 5_000
MAX_PACKAGES_PER_COMMAND = 1_000
