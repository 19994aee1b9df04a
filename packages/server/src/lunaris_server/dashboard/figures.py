"""The fleet in two figures, devices and commands by status: for /metrics and the demo's
summary line. Two aggregates over indexed columns."""

from sqlalchemy import case, func, select

from lunaris_protocol import CommandStatus
from lunaris_server.commands.models import Command
from lunaris_server.devices.models import Device
from lunaris_server.web.metrics import FleetFigures
from lunaris_server.web.state import AppState


async def fleet_figures(state: AppState) -> FleetFigures:
    """Devices by status and commands by status: two aggregates over indexed columns."""
    cutoff = state.liveness.cutoff(state.clock())
    async with state.database.session() as session:
        total, revoked, online = (
            await session.execute(
                select(
                    func.count(),
                    func.count(Device.revoked_at),
                    func.coalesce(
                        func.sum(
                            case(
                                (Device.revoked_at.is_(None) & (Device.last_seen_at > cutoff), 1),
                                else_=0,
                            )
                        ),
                        0,
                    ),
                )
            )
        ).one()
        by_status = await session.execute(
            select(Command.status, func.count()).group_by(Command.status)
        )
        commands = {status.value: 0 for status in CommandStatus}
        commands.update({status: int(count) for status, count in by_status})
    listed = int(total) - int(revoked)
    return FleetFigures(
        devices={
            "online": int(online),
            "offline": listed - int(online),
            "revoked": int(revoked),
        },
        commands=commands,
    )
