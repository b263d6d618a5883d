"""The one NinjaAPI instance: token auth on every endpoint (but sign-in), Kiln's error shape, local docs."""

from __future__ import annotations

from ninja import NinjaAPI

from webapp.api import invitations, projects, quotas, results, runs, sweeps, teams, tokens, workers
from webapp.api.auth import TokenAuth
from webapp.api.docs import LocalSwagger
from webapp.api.errors import install_error_handlers
from webapp.api.parser import JsonParser
from webapp.api.query import __doc__ as QUERY_LANGUAGE

DESCRIPTION = f"""Kiln's REST API. Get a token with `POST /api/auth/token` and send
`Authorization: Bearer <token>` with every other request. Errors are JSON
`{{"code", "message", "fields"}}`; anything you may not see answers 404.
Request bodies are JSON sent as `application/json` (anything else: 415), and a field
the operation does not know is refused (422 naming it). A body may be sent gzip-compressed
(`Content-Encoding: gzip`); inflated past the body size limit it gets a 413.

## Run queries (`GET /api/runs?query=...`)

{QUERY_LANGUAGE}
"""

api = NinjaAPI(
    title="Kiln API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=TokenAuth(),
    docs=LocalSwagger(),
    parser=JsonParser(),
)
install_error_handlers(api)
api.add_router("/auth", tokens.router)
api.add_router("/projects", projects.router)
api.add_router("/runs", runs.router)
api.add_router("/runs", results.router)
api.add_router("/sweeps", sweeps.router)
api.add_router("/teams", teams.router)
api.add_router("/invitations", invitations.router)
api.add_router("/workers", workers.router)
api.add_router("/admin", quotas.router)
