"""Console pages for device groups: the list with each group's size, the form that defines
one (its rule and its explicit list), and deleting one. A group's devices are the device
list filtered by it (``/devices?group_id=``)."""

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.console.deps import CheckedForm, ConsoleDep
from lunaris_server.console.forms import parsed, saved
from lunaris_server.console.web import Console
from lunaris_server.core.errors import DomainError
from lunaris_server.devices import groups
from lunaris_server.devices.groups import GroupSpec
from lunaris_server.devices.models import DeviceGroup
from lunaris_server.enrollment import service as enrollment
from lunaris_server.web.deps import NowDep, RowId, SessionDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)

LABELS = {
    "name": "Name",
    "description": "Description",
    "hostname_glob": "Hostname matches",
    "os_contains": "Windows contains",
    "tags": "Tags",
    "tags_match": "Tags match",
    "tag_source": "Tags set by",
    "enrollment_secret_id": "Enrolled with",
    "device_ids": "Listed devices",
}


def spec_of(form: dict[str, str]) -> GroupSpec:
    """The form's fields as the API's group definition (blank fields mean "not a criterion")."""

    def given(name: str) -> str | None:
        return form.get(name, "").strip() or None

    listed = form.get("device_ids", "").replace(",", "\n").split()
    data: dict[str, object] = {
        "name": form.get("name", ""),
        "description": form.get("description", "").strip(),
        "hostname_glob": given("hostname_glob"),
        "os_contains": given("os_contains"),
        "tags": given("tags"),
        "tags_match": form.get("tags_match") or "any",
        "tag_source": form.get("tag_source") or "any",
        "enrollment_secret_id": given("enrollment_secret_id"),
        "device_ids": listed,
    }
    return parsed(GroupSpec, data, LABELS)


async def _page(
    request: Request,
    console: Console,
    session: AsyncSession,
    group: DeviceGroup | None = None,
    *,
    form: dict[str, str] | None = None,
    refused: DomainError | None = None,
) -> Response:
    """The groups page (``group`` None) or one group's, with the form as entered and why it
    was refused, when it was."""
    user = request.state.console_user
    shown = await groups.list_groups(session) if group is None else [group]
    listed = await groups.listed_devices(session, [g.id for g in shown])
    context: dict[str, object] = {
        # The list's sizes come in a fragment of their own (partials/groups/table.html).
        "counts": None if group is None else await groups.member_counts(session, shown),
        "error": refused.message if refused else None,
        "secrets": await enrollment.list_secrets(session) if user.is_admin else [],
    }
    if group is None:
        context |= {"groups": shown, "form": form or {}}
        template = "pages/groups/list.html"
    else:
        context |= {
            "group": group,
            "count": context["counts"][group.id],  # type: ignore[index]
            "listed": listed[group.id],
            "form": form or _form_of(group, listed[group.id]),
        }
        template = "pages/groups/detail.html"
    status_code = refused.status_code if refused else 200
    return console.render(request, template, context, status_code=status_code)


def _form_of(group: DeviceGroup, listed: list[str]) -> dict[str, str]:
    return {
        "name": group.name,
        "description": group.description,
        "hostname_glob": group.hostname_glob or "",
        "os_contains": group.os_contains or "",
        "tags": ", ".join(group.tags or []),
        "tags_match": group.tags_match,
        "tag_source": group.tag_source,
        "enrollment_secret_id": str(group.enrollment_secret_id or ""),
        "device_ids": "\n".join(listed),
    }


@router.get("/groups")
async def groups_page(
    request: Request, _user: ConsoleUser, console: ConsoleDep, session: SessionDep
) -> Response:
    return await _page(request, console, session)


@router.get("/groups/fragments/table")
async def groups_table(
    request: Request, _user: ConsoleUser, console: ConsoleDep, session: SessionDep
) -> Response:
    """The groups with their sizes now (the groups page asks for it as soon as it is shown)."""
    found = await groups.list_groups(session)
    context = {"groups": found, "counts": await groups.member_counts(session, found)}
    return console.render(request, "partials/groups/table.html", context)


@router.post("/groups")
async def create_group(
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    async def attempt() -> DeviceGroup:
        spec = spec_of(form)
        return await groups.create_group(
            session, spec=spec, actor=user_actor(request, admin), now=now
        )

    return await saved(
        work,
        attempt(),
        then=lambda group: f"/groups/{group.id}",
        refused=lambda error: _page(request, console, session, form=form, refused=error),
    )


@router.get("/groups/{group_id}")
async def group_page(
    group_id: RowId,
    request: Request,
    _user: ConsoleUser,
    console: ConsoleDep,
    session: SessionDep,
) -> Response:
    group = await groups.get_group(session, group_id=group_id)
    return await _page(request, console, session, group)


@router.post("/groups/{group_id}")
async def update_group(
    group_id: RowId,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    group = await groups.get_group(session, group_id=group_id)

    async def attempt() -> DeviceGroup:
        spec = spec_of(form)
        return await groups.update_group(
            session, group_id=group_id, spec=spec, actor=user_actor(request, admin), now=now
        )

    return await saved(
        work,
        attempt(),
        then=lambda changed: f"/groups/{changed.id}",
        refused=lambda error: _page(request, console, session, group, form=form, refused=error),
    )


@router.post("/groups/{group_id}/delete")
async def delete_group(
    group_id: RowId,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    await groups.delete_group(session, group_id=group_id, actor=user_actor(request, admin), now=now)
    await work.commit()
    return RedirectResponse("/groups", status_code=303)
