"""``python -m lunaris_agent``: the same as the ``lunaris-agent`` command."""

from lunaris_agent.cli import main

raise SystemExit(main())
