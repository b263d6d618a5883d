"""/api/admin/quotas: the limits admins set per user and per team (admins only: 403 for everyone else).

`PUT /api/admin/quotas/{user|team}/{name}` sets every limit (a missing one: no limit), `PATCH`
changes only those given (null clears one), `DELETE` removes them all. The scheduler enforces
them; submits are never refused for a quota.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import Http404
from ninja import Router, Schema, Status
from pydantic import Field, StrictFloat, StrictInt

from webapp.api.auth import ApiRequest
from webapp.api.errors import ErrorOut
from webapp.api.schemas import BodyIn, Text
from webapp.cluster.models import Quota
from webapp.cluster.quotas import (
    FIELDS,
    quota_as_dict,
    quota_clear,
    quota_owner,
    quota_set,
    quotas_all,
    require_admin,
)

router = Router(tags=["admin"])
Kind = Literal["user", "team"]
Count = StrictInt | None
Amount = StrictFloat | None  # a whole number is accepted too


class QuotaIn(BodyIn):
    gpus: Count = Field(None, ge=0, description="GPUs held at once")
    cpus: Count = Field(None, ge=0, description="CPU slots held at once")
    memory_gb: Amount = Field(None, ge=0, description="host memory held at once, in GB")
    runs: Count = Field(None, ge=0, description="runs scheduled or running at once")
    gpu_hours_per_week: Amount = Field(None, ge=0, description="GPU-hours used in the last 7 days")


class QuotaOut(Schema):
    kind: str  # "user" or "team"
    name: str
    gpus: int | None
    cpus: int | None
    memory_gb: float | None
    runs: int | None
    gpu_hours_per_week: float | None
    updated_at: datetime


@router.get("/quotas", response={200: list[QuotaOut], 403: ErrorOut})
def list_quotas(request: ApiRequest) -> list[dict]:
    """Every quota: users first, then teams, by name."""
    require_admin(request.auth)
    return [quota_as_dict(quota) for quota in quotas_all()]


@router.get("/quotas/{kind}/{name}", response={200: QuotaOut, 403: ErrorOut, 404: ErrorOut})
def get_quota(request: ApiRequest, kind: Kind, name: Text) -> dict:
    require_admin(request.auth)
    owner = quota_owner(kind, name)
    quota = Quota.objects.select_related("user", "team").filter(**{kind: owner}).first()
    if quota is None:
        raise Http404(f"{kind} {name} has no quota")
    return quota_as_dict(quota)


@router.put("/quotas/{kind}/{name}", response={200: QuotaOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def put_quota(request: ApiRequest, kind: Kind, name: Text, payload: QuotaIn) -> dict:
    """Set all of a user's or team's limits; a limit left out is no limit."""
    quota = quota_set(actor=request.auth, kind=kind, name=name, limits=payload.model_dump(), replace=True)
    return quota_as_dict(quota)


@router.patch("/quotas/{kind}/{name}", response={200: QuotaOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def patch_quota(request: ApiRequest, kind: Kind, name: Text, payload: QuotaIn) -> dict:
    """Change only the limits given; null clears one."""
    given = {field: getattr(payload, field) for field in FIELDS if field in payload.model_fields_set}
    quota = quota_set(actor=request.auth, kind=kind, name=name, limits=given)
    return quota_as_dict(quota)


@router.delete("/quotas/{kind}/{name}", response={204: None, 403: ErrorOut, 404: ErrorOut})
def delete_quota(request: ApiRequest, kind: Kind, name: Text) -> Status:
    """Remove every limit of a user or team (204 also when they had none)."""
    quota_clear(actor=request.auth, kind=kind, name=name)
    return Status(204, None)
