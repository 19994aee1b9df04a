"""Console pages for package rules: the list (in the order they decide), the form that adds
or changes one, and deleting one."""

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from lunaris_server.accounts.deps import ConsoleAdmin, ConsoleUser, user_actor
from lunaris_server.console.deps import CheckedForm, ConsoleDep
from lunaris_server.console.forms import parsed, saved
from lunaris_server.console.web import Console
from lunaris_server.core.errors import DomainError
from lunaris_server.devices import groups
from lunaris_server.updates import rule_store
from lunaris_server.updates.models import PackageRule
from lunaris_server.updates.rules import RULE_ORDER, RuleSpec
from lunaris_server.web.deps import NowDep, RowId, SessionDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(include_in_schema=False)

LABELS = {
    "package": "Package",
    "source": "Source",
    "group_id": "Applies to",
    "action": "Action",
    "version_constraint": "Stay within",
    "skip_version": "Skip version",
    "note": "Note",
}


def spec_of(form: dict[str, str]) -> RuleSpec:
    data: dict[str, object] = {name: form.get(name, "").strip() or None for name in LABELS}
    data["action"] = data["action"] or "manual"
    data["note"] = data["note"] or ""
    return parsed(RuleSpec, data, LABELS)


def _form_of(rule: PackageRule) -> dict[str, str]:
    return {
        "package": rule.package,
        "source": rule.source or "",
        "group_id": str(rule.group_id or ""),
        "action": rule.action,
        "version_constraint": rule.version_constraint or "",
        "skip_version": rule.skip_version or "",
        "note": rule.note,
    }


async def _page(
    request: Request,
    console: Console,
    session: AsyncSession,
    rule: PackageRule | None = None,
    *,
    form: dict[str, str] | None = None,
    refused: DomainError | None = None,
) -> Response:
    book = await rule_store.load_book(session)
    context = {
        "rules": book.rules,
        "book": book,
        "order": RULE_ORDER,
        "groups": await groups.list_groups(session),
        "rule": rule,
        "form": form or (_form_of(rule) if rule is not None else {}),
        "error": refused.message if refused else None,
    }
    template = "pages/updates/rule.html" if rule is not None else "pages/updates/rules.html"
    return console.render(
        request, template, context, status_code=refused.status_code if refused else 200
    )


@router.get("/updates/rules")
async def rules_page(
    request: Request, _user: ConsoleUser, console: ConsoleDep, session: SessionDep
) -> Response:
    return await _page(request, console, session)


@router.post("/updates/rules")
async def create_rule(
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    async def attempt() -> object:
        spec = spec_of(form)
        return await rule_store.create_rule(
            session, spec=spec, actor=user_actor(request, admin), now=now
        )

    return await saved(
        work,
        attempt(),
        then=lambda _rule: "/updates/rules",
        refused=lambda error: _page(request, console, session, form=form, refused=error),
    )


@router.get("/updates/rules/{rule_id}")
async def rule_page(
    rule_id: RowId, request: Request, _user: ConsoleUser, console: ConsoleDep, session: SessionDep
) -> Response:
    rule = await rule_store.get_rule(session, rule_id=rule_id)
    return await _page(request, console, session, rule)


@router.post("/updates/rules/{rule_id}")
async def update_rule(
    rule_id: RowId,
    request: Request,
    form: CheckedForm,
    admin: ConsoleAdmin,
    console: ConsoleDep,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    rule = await rule_store.get_rule(session, rule_id=rule_id)

    async def attempt() -> object:
        spec = spec_of(form)
        return await rule_store.update_rule(
            session, rule_id=rule_id, spec=spec, actor=user_actor(request, admin), now=now
        )

    return await saved(
        work,
        attempt(),
        then=lambda _rule: "/updates/rules",
        refused=lambda error: _page(request, console, session, rule, form=form, refused=error),
    )


@router.post("/updates/rules/{rule_id}/delete")
async def delete_rule(
    rule_id: RowId,
    request: Request,
    _form: CheckedForm,
    admin: ConsoleAdmin,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> Response:
    await rule_store.delete_rule(
        session, rule_id=rule_id, actor=user_actor(request, admin), now=now
    )
    await work.commit()
    return RedirectResponse("/updates/rules", status_code=303)
