"""Which devices a group holds, as SQL: the one place a group's rule turns into a condition.

Nothing about membership is stored but the explicit list: the rule is asked of the database
each time (the device list's group filter, a group's page and counts, a device's groups), so
membership is always current. Every condition reads indexes or the device row itself: the
tags through ``ix_device_tags_tag_source`` (one pass, whichever devices are asked about),
the explicit list through its primary key.
"""

from sqlalchemy import ColumnElement, and_, distinct, func, or_, select

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


def rule_condition(group: DeviceGroup) -> ColumnElement[bool] | None:
    """The group's rule (every criterion it gives must hold), or None when it gives none."""
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
        tagged = select(DeviceTag.device_id).where(
            DeviceTag.tag.in_(group.tags), DeviceTag.source.in_(TAG_SOURCES[group.tag_source])
        )
        if group.tags_match == "all" and len(group.tags) > 1:
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


def member_condition(group: DeviceGroup) -> ColumnElement[bool]:
    """A device is in the group when the rule matches it or the group lists it. Revoked
    devices are in no group: callers list only enrolled devices."""
    rule = rule_condition(group)
    listed = listed_condition(group.id)
    return listed if rule is None else or_(rule, listed)
