"""Compare pages, their data endpoints, saved and shared dashboards. Views parse, call, render."""

from __future__ import annotations

from typing import Any

import orjson
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import parse_etags
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from scheduler.sweeps.study import MIN_TRIALS_FOR_IMPORTANCE
from webapp.csp import csp_allows_eval
from webapp.dashboards import compare, export, payload, selectors, services, sweep_selectors
from webapp.dashboards.models import Dashboard
from webapp.dashboards.state import CompareState, StateError, state_from_query
from webapp.experiments.assets import PLOTLY_VERSION
from webapp.experiments.models import Sweep
from webapp.experiments.sweeps import sweep_control, sweep_summaries, sweep_summary
from webapp.projects.models import Project
from webapp.projects.permissions import Access, project_access
from webapp.projects.runs_cache import project_runs_cached

# --- compare -------------------------------------------------------------------------------------

@require_GET
@csp_allows_eval
def compare_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_for(request.user, project_id)
    try:
        state = state_from_query(request.GET)
    except StateError as exc:
        return _bad_page(request, project, str(exc))
    urls = {
        "data": reverse("dashboards:compare_data", args=[project.id]),
        "csv": reverse("dashboards:compare_csv", args=[project.id]),
        "page": reverse("dashboards:compare", args=[project.id]),
    }
    return _render_compare(request, project, state, urls, dashboard=None, share_token=None)


@require_GET
def compare_data(request: HttpRequest, project_id: int) -> HttpResponse:
    project = selectors.project_for(request.user, project_id)
    return _data(request, project, None)


@require_GET
def compare_csv(request: HttpRequest, project_id: int) -> HttpResponseBase:
    project = selectors.project_for(request.user, project_id)
    return _csv(request, project, None)


# the sweep page's boxes its live feed refills, and the template each is drawn from
SWEEP_PARTS = {"sweep-status": "status", "sweep-controls-box": "controls", "rungs-box": "rungs", "trials-box": "trials"}
SWEEP_POLL_MS = 3000


@require_GET
@csp_allows_eval
def sweep_page(request: HttpRequest, project_id: int, sweep_id: int) -> HttpResponse:
    project = selectors.project_for(request.user, project_id)
    sweep = selectors.sweep_for(project, sweep_id)
    try:
        state = state_from_query(request.GET)
    except StateError as exc:
        return _bad_page(request, project, str(exc))
    access = project_access(request.user, project)
    version = _sweep_etag(request, sweep, state, access).strip('"')  # read first: the data is at least this new
    context = _sweep_context(request, project, sweep, state, access)
    context["live"]["version"] = version
    return render(request, "dashboards/sweep.html", context)


@require_GET
def sweep_data(request: HttpRequest, project_id: int, sweep_id: int) -> HttpResponse:
    """The sweep page's live feed: its charts' data and its tables as HTML, or 304 Not Modified while
    the sweep's version is the one the page sent in If-None-Match."""
    project = selectors.project_for(request.user, project_id)
    sweep = selectors.sweep_for(project, sweep_id)
    try:
        state = state_from_query(request.GET)
    except StateError as exc:
        return JsonResponse({"error": {"code": "bad_request", "message": str(exc)}}, status=400)
    access = project_access(request.user, project)
    etag = _sweep_etag(request, sweep, state, access)
    sent = {tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))}
    if etag in sent:  # gzip weakens the ETag it sent (W/"..."): the same version
        response: HttpResponse = HttpResponseNotModified()
    else:
        context = _sweep_context(request, project, sweep, state, access)
        parts = {box: render_to_string(f"dashboards/_sweep_{name}.html", context, request)
                 for box, name in SWEEP_PARTS.items()}
        live = {**context["live"], "progress": context["progress"], "version": etag.strip('"'), "html": parts}
        response = HttpResponse(orjson.dumps(live), content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def _sweep_etag(request: HttpRequest, sweep: Sweep, state: CompareState, access: Access) -> str:
    """The sweep's version as seen by this viewer (edit access shows the controls), on this objective."""
    return f'"{sweep_selectors.sweep_version(sweep, state.best, request.GET.get("mode", ""), access.name)}"'


def _sweep_context(request: HttpRequest, project: Project, sweep: Sweep, state: CompareState,
                   access: Access) -> dict[str, Any]:
    runs = selectors.compare_runs(project, CompareState(sweep=sweep.id))
    meta = compare.runs_meta(runs)
    keys = selectors.metric_keys(runs)
    objective, goal_mode = sweep_selectors.sweep_objective(sweep)
    # the page opens on the sweep's own objective; ?best=&mode= look at another metric
    best = state.best if state.best in keys else (objective if objective in keys or not keys else keys[0])
    mode = state.mode if "mode" in request.GET else (goal_mode if best == objective else state.mode)
    summary = sweep_summary(sweep)
    insights = sweep_selectors.sweep_insights(sweep)
    can_edit = access >= Access.EDIT
    controls = sweep_selectors.controls_for(summary) if can_edit else []
    params = sorted((sweep.spec or {}).get("parameters", {}))
    query = request.GET.urlencode()
    return {
        "project": project,
        "sweep": sweep,
        "summary": summary,
        "controls": controls,
        "rungs": insights["rungs"],
        "runs": runs,
        "keys": keys,
        "best": best,
        "mode": mode,
        "params": params,
        "progress": compare.best_so_far(meta, best, mode) if best else [],
        "importance_min_trials": MIN_TRIALS_FOR_IMPORTANCE,
        "live": {
            "runs": meta,
            "params": params,
            "keys": keys,
            "best": best,
            "mode": mode,
            "importance": insights["importance"],
            "controls": controls,
            "final": sweep_selectors.sweep_is_final(summary),
            "data_url": reverse("dashboards:sweep_data", args=[project.id, sweep.id]) + (f"?{query}" if query else ""),
            "interval_ms": SWEEP_POLL_MS,
        },
        "compare_url": reverse("dashboards:compare", args=[project.id]) + "?" + CompareState(sweep=sweep.id).as_query(),
        "plotly_url": _plotly_url(),
    }


@require_POST
def sweep_control_view(request: HttpRequest, project_id: int, sweep_id: int) -> HttpResponse:
    """The sweep page's pause/resume/stop/max_runs buttons (a form post: CSRF-checked, edit access)."""
    project = selectors.project_for(request.user, project_id, Access.EDIT)
    sweep = selectors.sweep_for(project, sweep_id)
    raw = request.POST.get("max_runs", "").strip()
    try:
        sweep_control(user=request.user, sweep=sweep, action=request.POST.get("action", ""),
                      max_runs=int(raw) if raw.isdigit() else None)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Sweep {sweep.name}: {request.POST.get('action', '').replace('_', ' ')} done.")
    return HttpResponseRedirect(reverse("dashboards:sweep", args=[project.id, sweep.id]))


@require_GET
def sweep_list(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project's Sweeps tab: each sweep's state, trials, best run and best value."""
    project = selectors.project_for(request.user, project_id)
    return render(request, "dashboards/sweeps.html", {"project": project, "sweeps": sweep_summaries(project)})


# --- saved dashboards -----------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
def dashboard_list(request: HttpRequest, project_id: int) -> HttpResponse:
    needed = Access.EDIT if request.method == "POST" else Access.VIEW
    project = selectors.project_for(request.user, project_id, needed)
    if request.method == "POST":
        try:
            state = state_from_query(_query_of(request.POST.get("state", "")))
            dashboard = services.dashboard_save(
                user=request.user, project=project, name=request.POST.get("name", ""), state=state  # type: ignore[arg-type]
            )
        except (StateError, ValidationError) as exc:
            text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            return render(request, "dashboards/list.html", _list_context(request, project, error=text), status=400)
        messages.success(request, f"Saved dashboard “{dashboard.name}”.")
        return HttpResponseRedirect(reverse("dashboards:dashboard", args=[project.id, dashboard.id]))
    return render(request, "dashboards/list.html", _list_context(request, project))


@require_GET
@csp_allows_eval
def dashboard_page(request: HttpRequest, project_id: int, dashboard_id: int) -> HttpResponse:
    project = selectors.project_for(request.user, project_id)
    dashboard = selectors.dashboard_for(project, dashboard_id)
    try:
        state = _saved_state(dashboard).merged(request.GET)
    except StateError as exc:
        return _bad_page(request, project, str(exc))
    urls = {
        "data": reverse("dashboards:compare_data", args=[project.id]),
        "csv": reverse("dashboards:compare_csv", args=[project.id]),
        "page": reverse("dashboards:dashboard", args=[project.id, dashboard.id]),
    }
    return _render_compare(request, project, state, urls, dashboard=dashboard, share_token=None)


@require_POST
def dashboard_delete(request: HttpRequest, project_id: int, dashboard_id: int) -> HttpResponse:
    project = selectors.project_for(request.user, project_id, Access.EDIT)
    dashboard = selectors.dashboard_for(project, dashboard_id)
    services.dashboard_delete(user=request.user, dashboard=dashboard)  # type: ignore[arg-type]
    messages.success(request, f"Deleted dashboard “{dashboard.name}”.")
    return HttpResponseRedirect(reverse("dashboards:list", args=[project.id]))


# --- public read-only links: the same views under share/<token>/, GET only, nothing writable -------

@require_GET
@csp_allows_eval
def shared_compare(request: HttpRequest, token: str) -> HttpResponse:
    project = selectors.shared_project(request.user, token)
    try:
        state = state_from_query(request.GET)
    except StateError as exc:
        return _bad_page(request, project, str(exc), share_token=token)
    urls = {
        "data": reverse("dashboards:shared_compare_data", args=[token]),
        "csv": reverse("dashboards:shared_compare_csv", args=[token]),
        "page": reverse("dashboards:shared_compare", args=[token]),
    }
    return _render_compare(request, project, state, urls, dashboard=None, share_token=token)


@require_GET
def shared_compare_data(request: HttpRequest, token: str) -> HttpResponse:
    return _data(request, selectors.shared_project(request.user, token), None)


@require_GET
def shared_compare_csv(request: HttpRequest, token: str) -> HttpResponseBase:
    return _csv(request, selectors.shared_project(request.user, token), None)


@require_GET
def shared_dashboard_list(request: HttpRequest, token: str) -> HttpResponse:
    project = selectors.shared_project(request.user, token)
    return render(request, "dashboards/list.html", {
        "project": project, "dashboards": selectors.project_dashboards(project), "can_edit": False,
        "share_token": token,
    })


@require_GET
@csp_allows_eval
def shared_dashboard(request: HttpRequest, token: str, dashboard_id: int) -> HttpResponse:
    project = selectors.shared_project(request.user, token)
    dashboard = selectors.dashboard_for(project, dashboard_id)
    try:
        state = _saved_state(dashboard).merged(request.GET)
    except StateError as exc:
        return _bad_page(request, project, str(exc), share_token=token)
    urls = {
        "data": reverse("dashboards:shared_data", args=[token, dashboard.id]),
        "csv": reverse("dashboards:shared_csv", args=[token, dashboard.id]),
        "page": reverse("dashboards:shared", args=[token, dashboard.id]),
    }
    return _render_compare(request, project, state, urls, dashboard=dashboard, share_token=token)


@require_GET
def shared_data(request: HttpRequest, token: str, dashboard_id: int) -> HttpResponse:
    project = selectors.shared_project(request.user, token)
    return _data(request, project, selectors.dashboard_for(project, dashboard_id))


@require_GET
def shared_csv(request: HttpRequest, token: str, dashboard_id: int) -> HttpResponseBase:
    project = selectors.shared_project(request.user, token)
    return _csv(request, project, selectors.dashboard_for(project, dashboard_id))


# --- helpers ---------------------------------------------------------------------------------------

def _render_compare(
    request: HttpRequest, project: Project, state: CompareState, urls: dict[str, str],
    *, dashboard: Dashboard | None, share_token: str | None,
) -> HttpResponse:
    """The compare page; opened through a public link (`share_token`) it saves nothing and links only under the link."""
    try:
        runs = selectors.compare_runs(project, state)
    except StateError as exc:
        return _bad_page(request, project, str(exc), share_token=share_token)
    keys = selectors.metric_keys(runs)
    access = Access.VIEW if share_token else project_access(request.user, project)
    return render(request, "dashboards/compare.html", {
        "project": project,
        "state": state,
        "runs": runs,
        "keys": keys,
        "diff": compare.config_diff(runs),
        "dashboard": dashboard,
        "shared": bool(share_token),
        "share_token": share_token,
        "can_save": access >= Access.EDIT and not share_token,
        "state_query": state.as_query(),
        "save_url": reverse("dashboards:list", args=[project.id]),
        "page_config": {
            "urls": urls,
            "state": state.as_json(),
            "keys": keys,
            "runs": compare.runs_meta(runs),
        },
        "plotly_url": _plotly_url(),
    })


def _data(request: HttpRequest, project: Project, dashboard: Dashboard | None) -> HttpResponse:
    try:
        state = _saved_state(dashboard).merged(request.GET) if dashboard else state_from_query(request.GET)
        runs = selectors.compare_runs(project, state)
        query = payload.series_query(request.GET, state, selectors.metric_keys(runs))
    except StateError as exc:
        return JsonResponse({"error": {"code": "bad_request", "message": str(exc)}}, status=400)

    def build() -> tuple[bytes, bool]:
        data = payload.series_data(runs, query)
        # NOTE: orjson writes the ~400k numbers of a 100-run view several times faster than json, without spaces.
        return orjson.dumps(data), not data["pending"]  # a partial answer (a cold read cut short) is not kept

    asked = f"{dashboard.id if dashboard else ''}\x00{dashboard.state if dashboard else ''}\x00{request.GET.urlencode()}"
    response = HttpResponse(project_runs_cached(project, "series", asked, build), content_type="application/json")
    response["Cache-Control"] = "private, no-cache"
    return response


def _csv(request: HttpRequest, project: Project, dashboard: Dashboard | None) -> HttpResponseBase:
    try:
        state = _saved_state(dashboard).merged(request.GET) if dashboard else state_from_query(request.GET)
        runs = selectors.compare_runs(project, state)
    except StateError as exc:
        return JsonResponse({"error": {"code": "bad_request", "message": str(exc)}}, status=400)
    keys = state.keys or tuple(selectors.metric_keys(runs))
    response = StreamingHttpResponse(export.csv_lines(runs, keys), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kiln-{project.slug}-compare.csv"'
    return response


def _saved_state(dashboard: Dashboard | None) -> CompareState:
    if dashboard is None:
        return CompareState()
    return state_from_query(dashboard.state)


def _query_of(text: str) -> QueryDict:
    return QueryDict(text.lstrip("?"))


def _list_context(request: HttpRequest, project: Project, *, error: str = "") -> dict:
    return {
        "project": project,
        "dashboards": selectors.project_dashboards(project),
        "can_edit": project_access(request.user, project) >= Access.EDIT,
        "error": error,
    }


def _bad_page(request: HttpRequest, project: Project, message: str, *, share_token: str | None = None) -> HttpResponse:
    context = {"project": project, "message": message, "share_token": share_token}
    return render(request, "dashboards/error.html", context, status=400)


def _plotly_url() -> str:
    return reverse("plotly_js", args=[PLOTLY_VERSION])  # served by webapp.experiments.assets
