from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.health.checks import check_broker, check_database, check_supervisor, check_workers


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and broker answer (503 otherwise); workers are reported as they are."""
    database, broker, workers = check_database(), check_broker(), check_workers()
    healthy = database["ok"] and broker["ok"]
    body = {
        "status": "ok" if healthy and workers["ok"] else "degraded",
        "database": database,
        "broker": broker,
        "workers": workers,
    }
    supervisor = check_supervisor()
    if supervisor is not None:  # `kiln run`: how often each of its processes was restarted, and why
        body["supervisor"] = supervisor
    return JsonResponse(body, status=200 if healthy else 503)
