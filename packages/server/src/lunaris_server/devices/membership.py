"""Which devices a group holds, as SQL: the one place a group's rule turns into a condition.

Nothing about membership is stored but the explicit list: the rule is asked of the database
each time (the device list's group filter, a group's page and counts, a device's groups), so
membership is always current. Every condition reads indexes or the device row itself: the
tags through ``ix_device_tags_tag_source`` (one pass, whichever devices are asked about),
the explicit list through its primary key.
"""

from sqlalchemy import ColumnElement, and_, distinct, false, func, or_, select

from lunaris_server.db.queries import contains_pattern
from lunaris_server.devices.models import Device, DeviceGroup, DeviceGroupMember, DeviceTag

TAG_SOURCES = {"admin": ("admin",), "agent": ("agent",), "any": ("admin", "agent")}
"""A rule's ``tag_source``, and the kinds of tag it counts."""


def glob_pattern(glob: str) -> str:
    """A hostname glob (``*`` any characters, ``?`` one; nothing else is special) as a
    case-folded LIKE pattern with ``\\`` as the escape."""
    out = []
    for char in glob.strip().lower():
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in "\\%_":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def rule_condition(group: DeviceGroup, *, per_row: bool = False) -> ColumnElement[bool] | None:
    """The group's rule (every criterion it gives must hold), or None when it gives none.

    The tags are asked as ``id IN (the tagged devices)``, which the database answers once for
    all the devices it looks at; ``per_row`` asks them of each device row instead (a
    correlated subquery: one index probe), which is cheaper for one device's groups."""
    conditions: list[ColumnElement[bool]] = []
    if group.hostname_glob:
        conditions.append(
            func.lower(Device.hostname).like(glob_pattern(group.hostname_glob), escape="\\")
        )
    if group.os_contains:
        conditions.append(
            func.lower(Device.os_version).like(contains_pattern(group.os_contains), escape="\\")
        )
    if group.tags:
        kinds = (DeviceTag.tag.in_(group.tags), DeviceTag.source.in_(TAG_SOURCES[group.tag_source]))
        every = group.tags_match == "all" and len(group.tags) > 1
        if per_row:
            own = (DeviceTag.device_id == Device.id, *kinds)
            if every:
                counted = select(func.count(distinct(DeviceTag.tag))).where(*own)
                conditions.append(counted.scalar_subquery() == len(group.tags))
            else:
                conditions.append(select(DeviceTag.device_id).where(*own).exists())
        else:
            tagged = select(DeviceTag.device_id).where(*kinds)
            if every:
                tagged = tagged.group_by(DeviceTag.device_id).having(
                    func.count(distinct(DeviceTag.tag)) == len(group.tags)
                )
            conditions.append(Device.id.in_(tagged))
    if group.enrollment_secret_id is not None:
        conditions.append(Device.enrollment_secret_id == group.enrollment_secret_id)
    return and_(*conditions) if conditions else None


def listed_condition(group_id: int) -> ColumnElement[bool]:
    return Device.id.in_(
        select(DeviceGroupMember.device_id).where(DeviceGroupMember.group_id == group_id)
    )


def member_condition(group: DeviceGroup, *, lists: bool = True) -> ColumnElement[bool]:
    """A device is in the group when the rule matches it or the group lists it. Revoked
    devices are in no group: callers list only enrolled devices. ``lists=False``: the caller
    knows the group lists no device, so the list is not asked."""
    rule = rule_condition(group)
    if not lists:
        return false() if rule is None else rule
    listed = listed_condition(group.id)
    return listed if rule is None else or_(rule, listed)
