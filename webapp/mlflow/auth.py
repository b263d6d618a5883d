"""Who is calling: `MLFLOW_TRACKING_TOKEN` (Bearer) or `MLFLOW_TRACKING_USERNAME`/`_PASSWORD` (Basic, the password an API token).

Only the Authorization header counts (never a session cookie), which is why these endpoints need no CSRF
token, as the token API needs none. The token's rate limit is the API's own (`TokenAuth`).
"""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth.models import User
from django.http import HttpRequest

from webapp.api.auth import TokenAuth
from webapp.api.errors import ApiError
from webapp.mlflow.errors import MlflowError

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="kiln", charset="UTF-8"'}
_HINT = ("Send a Kiln API token: MLFLOW_TRACKING_TOKEN=<token>, or MLFLOW_TRACKING_USERNAME=<user> with "
         "MLFLOW_TRACKING_PASSWORD=<token>")


def mlflow_user(request: HttpRequest) -> User:
    """The token's user, or MlflowError UNAUTHENTICATED (401) / RESOURCE_EXHAUSTED (429, the token's rate limit)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    username = None
    if scheme == "basic":
        try:
            username, _, credentials = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise MlflowError("UNAUTHENTICATED", "Malformed basic credentials. " + _HINT, headers=_CHALLENGE) from None
    elif scheme != "bearer" or not credentials:
        raise MlflowError("UNAUTHENTICATED", _HINT, headers=_CHALLENGE)
    try:
        user = TokenAuth().authenticate(request, credentials)
    except ApiError as exc:  # the rate limit
        raise MlflowError("RESOURCE_EXHAUSTED", exc.message, headers=exc.headers) from None
    if user is None:
        raise MlflowError("UNAUTHENTICATED", "Invalid or revoked token. " + _HINT, headers=_CHALLENGE)
    if username is not None and user.username != username:
        raise MlflowError("UNAUTHENTICATED", "The token does not belong to that user. " + _HINT, headers=_CHALLENGE)
    return user
