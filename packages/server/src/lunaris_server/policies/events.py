"""The console event every change of a policy or of one of its rollouts announces."""

from sqlalchemy.ext.asyncio import AsyncSession

from lunaris_protocol import PolicyUpdated, PolicyUpdatedData
from lunaris_server.realtime.outbox import announce


def announce_policy(session: AsyncSession, policy_id: int) -> None:
    """Consoles showing the policy (its page, the list) refresh once this commits."""
    announce(session, PolicyUpdated(data=PolicyUpdatedData(policy_id=policy_id)))
