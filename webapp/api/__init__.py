"""The REST API under /api/ (django-ninja): OpenAPI schema at /api/openapi.json, docs at /api/docs."""
