"""The REST API under /api/ (django-ninja): OpenAPI schema at /api/openapi.json, docs at /api/docs."""

from django.urls import path

from webapp.api.app import api
from webapp.api.docs import docs_asset

urlpatterns = [
    path("docs/assets/<str:name>", docs_asset, name="api-docs-asset"),
    path("", api.urls),
]
