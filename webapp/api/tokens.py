"""/api/auth: trade a username and password for an API token; list and revoke tokens; who am I."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import authenticate
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from webapp.accounts.selectors import tokens_of
from webapp.accounts.tokens import token_create, token_revoke
from webapp.api import ratelimit
from webapp.api.auth import ApiRequest
from webapp.api.errors import ApiError, ErrorOut
from webapp.api.schemas import BodyIn, Id, Text
from webapp.ratelimit import client_address

router = Router(tags=["auth"])


class LoginIn(BodyIn):
    username: Text = Field(max_length=150)
    password: Text = Field(max_length=4096)
    name: Text = Field("api", max_length=100, description="A label to tell your tokens apart")


class NewTokenOut(Schema):
    id: int
    name: str
    prefix: str
    token: str = Field(description="Shown once; send it as 'Authorization: Bearer <token>'")


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class MeOut(Schema):
    id: int
    username: str
    is_superuser: bool


@router.post("/token", auth=None, response={201: NewTokenOut, 401: ErrorOut, 429: ErrorOut})
def create_token(request: HttpRequest, payload: LoginIn) -> Status:
    """Create an API token for the user whose username and password are given."""
    retry_after = ratelimit.hit(f"login:{client_address(request)}", limit=ratelimit.LOGIN_LIMIT)
    if retry_after is not None:
        raise ApiError(429, "rate_limited", f"Too many sign-in attempts; retry in {retry_after} s",
                       headers={"Retry-After": str(retry_after)})
    user = authenticate(request, username=payload.username, password=payload.password)
    if user is None:
        raise ApiError(401, "bad_credentials", "Wrong username or password")
    row, token = token_create(user=user, name=payload.name)
    return Status(201, {"id": row.id, "name": row.name, "prefix": row.prefix, "token": token})


@router.get("/tokens", response=list[TokenOut])
def list_tokens(request: ApiRequest) -> list:
    """Your tokens, live ones first."""
    return list(tokens_of(request.auth))


@router.delete("/tokens/{token_id}", response={204: None, 404: ErrorOut})
def revoke_token(request: ApiRequest, token_id: Id) -> Status:
    """Revoke one of your tokens; it stops working at once."""
    if not token_revoke(user=request.auth, token_id=token_id):
        raise ApiError(404, "not_found", "No such live token")
    return Status(204, None)


@router.get("/me", response=MeOut)
def me(request: ApiRequest) -> dict:
    user = request.auth
    return {"id": user.pk, "username": user.get_username(), "is_superuser": user.is_superuser}
