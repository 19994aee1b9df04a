"""Enrollment secrets for admins: create (shown once), list, rotate, revoke."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, StringConstraints

from lunaris_protocol.text import IDENTIFIER
from lunaris_server.accounts.deps import AdminUser, user_actor
from lunaris_server.enrollment import service as enrollment
from lunaris_server.enrollment.models import EnrollmentSecret
from lunaris_server.web.api_errors import BODY_ERRORS, error_responses
from lunaris_server.web.deps import NowDep, RowId, SessionDep
from lunaris_server.web.unit_of_work import WorkDep

router = APIRouter(
    prefix="/api/enrollment-secrets", tags=["enrollment"], responses=error_responses(401, 403)
)

# The id column is a 32-bit integer: a larger number names no secret, and the database
# driver would refuse it as a query parameter.


class NewSecretRequest(BaseModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128), IDENTIFIER]
    expires_in_s: Annotated[int | None, Field(ge=60, le=10 * 365 * 86_400)] = None
    max_uses: Annotated[int | None, Field(ge=1, le=10_000_000)] = None


class SecretOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    max_uses: int | None
    uses: int
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, secret: EnrollmentSecret) -> "SecretOut":
        return cls.model_validate(secret, from_attributes=True)


class CreatedSecretOut(SecretOut):
    secret: str
    """Shown once: give it to the installer."""


@router.get("")
async def list_secrets(_admin: AdminUser, session: SessionDep) -> list[SecretOut]:
    return [SecretOut.of(s) for s in await enrollment.list_secrets(session)]


@router.post("", status_code=201, responses=BODY_ERRORS)
async def create_secret(
    body: NewSecretRequest,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> CreatedSecretOut:
    created = await enrollment.create_secret(
        session,
        name=body.name,
        expires_in=timedelta(seconds=body.expires_in_s) if body.expires_in_s else None,
        max_uses=body.max_uses,
        now=now,
        actor=user_actor(request, admin),
    )
    await work.commit()
    return CreatedSecretOut(**SecretOut.of(created.secret).model_dump(), secret=created.plaintext)


class RotateRequest(BaseModel):
    grace_s: Annotated[int, Field(ge=0, le=30 * 86_400)] = 0
    """How long the old secret keeps working; 0 revokes it at once."""


@router.post(
    "/{secret_id}/rotate", status_code=201, responses={**BODY_ERRORS, **error_responses(404, 409)}
)
async def rotate_secret(
    secret_id: RowId,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
    body: RotateRequest | None = None,
) -> CreatedSecretOut:
    """A new secret replaces this one (shown once); the old one stops working after the grace
    period."""
    created = await enrollment.rotate_secret(
        session,
        secret_id=secret_id,
        now=now,
        actor=user_actor(request, admin),
        grace=timedelta(seconds=(body or RotateRequest()).grace_s),
    )
    await work.commit()
    return CreatedSecretOut(**SecretOut.of(created.secret).model_dump(), secret=created.plaintext)


@router.delete("/{secret_id}", responses=error_responses(404, 422))
async def revoke_secret(
    secret_id: RowId,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    work: WorkDep,
    now: NowDep,
) -> SecretOut:
    secret = await enrollment.revoke_secret(
        session, secret_id=secret_id, now=now, actor=user_actor(request, admin)
    )
    await work.commit()
    return SecretOut.of(secret)
