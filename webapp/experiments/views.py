"""Run pages: the submit form, a run's page with its live JSON feeds, actions and downloads.

A run is reached either by id (signed-in users with access) or under a project's public
link (`/share/<token>/runs/<id>/`, read-only). Every view goes through `run_for` /
`project_for`, so outsiders get 404 and viewers get 403 on anything that acts.
"""

from __future__ import annotations

import posixpath

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from webapp.experiments.code import MAX_CODE_BYTES
from webapp.experiments.downloads import stored_file_response
from webapp.experiments.forms import CODE, SubmitForm
from webapp.experiments.lifecycle import run_cancel
from webapp.experiments.live import log_lines, metric_series, run_status
from webapp.experiments.models import Artifact
from webapp.experiments.notes import run_notes_set
from webapp.experiments.run_page import artifact_rows, run_page_context
from webapp.experiments.selectors import run_by_number, run_for, run_page_url
from webapp.experiments.spec import SpecError
from webapp.experiments.submit import run_resubmit, run_submit
from webapp.ids import parse_id, parse_int
from webapp.projects.permissions import Access, project_access
from webapp.projects.selectors import project_for
from webapp.uploads import UploadTooLarge, page_upload_limit


@login_required
def _submit_too_large(request: HttpRequest, error: UploadTooLarge, project_id: int) -> HttpResponse:
    """The submit form again, empty, with the refusal under the code upload; nothing was read or stored."""
    project, _ = project_for(request.user, project_id, Access.EDIT)
    form = SubmitForm()
    form.values["mode"] = CODE
    form.add_errors([{"field": "code_file", "message": f"{error.message}."}])
    return render(request, "runs/submit.html", {"project": project, "form": form, "clone_of": None}, status=413)


@page_upload_limit(MAX_CODE_BYTES, too_large=_submit_too_large)
@login_required
def submit(request: HttpRequest, project_id: int) -> HttpResponse:
    project, _ = project_for(request.user, project_id, Access.EDIT)
    clone_id = request.GET.get("clone", "")
    clone_of = run_for(request.user, clone) if (clone := parse_id(clone_id)) is not None else None
    form = SubmitForm(request.POST, request.FILES, clone_of=clone_of) if request.method == "POST" else SubmitForm(clone_of=clone_of)
    if request.method == "POST":
        try:
            spec, code = form.spec_and_code()
            submitted = run_submit(user=request.user, project=project, spec=spec, code=code, cloned_from=clone_of)  # type: ignore[arg-type]
        except SpecError as exc:
            form.add_errors(exc.errors)
        else:
            if submitted.sweep is not None and submitted.sweep.controlled:
                messages.success(request, f"Started {submitted.sweep.name}: the scheduler makes its trials as slots free.")
                return redirect("dashboards:sweep", project_id=project.id, sweep_id=submitted.sweep.id)
            if submitted.sweep is not None:
                messages.success(request, f"Queued a sweep of {len(submitted.runs)} run{'' if len(submitted.runs) == 1 else 's'}.")
                return redirect("project_detail", project_id=project.id)
            return redirect(run_page_url(submitted.runs[0]))
    context = {"project": project, "form": form, "clone_of": clone_of}
    return render(request, "runs/submit.html", context, status=400 if form.errors or form.non_field_errors else 200)


@login_required
def run_page(request: HttpRequest, project_id: int, number: int) -> HttpResponse:
    run = run_by_number(request.user, project_id, number)
    access = project_access(request.user, run.project)
    return render(request, "runs/detail.html", run_page_context(run, access=access, share_token=None))


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """`/runs/<id>/`, the address before runs lived under their project: moved for good (404 to outsiders)."""
    return redirect(run_page_url(run_for(request.user, run_id)), permanent=True)


@require_GET
def run_shared(request: HttpRequest, token: str, run_id: int) -> HttpResponse:
    run = run_for(request.user, run_id, link_token=token)
    return render(request, "runs/detail.html", run_page_context(run, access=Access.VIEW, share_token=token))


@never_cache
@require_GET
def run_metrics_json(request: HttpRequest, run_id: int, token: str | None = None) -> JsonResponse:
    """New points per key: `?since=loss:41&since=acc:41` returns steps after 41; unknown keys come whole."""
    run = run_for(request.user, run_id, link_token=token)
    since: dict[str, int] = {}
    for item in request.GET.getlist("since"):
        key, _, step = item.rpartition(":")
        if key and (last := parse_int(step)) is not None:
            since[key] = last
    status = run_status(run)  # read before the points, so a final state comes with every last point
    return JsonResponse({"status": status, "series": metric_series(run, since)})


@never_cache
@require_GET
def run_logs_json(request: HttpRequest, run_id: int, token: str | None = None) -> JsonResponse:
    """Log lines after `?after=<seq>` (the last seq the page has), oldest first."""
    run = run_for(request.user, run_id, link_token=token)
    after = request.GET.get("after", "")
    status = run_status(run, with_events=True)
    lines = log_lines(run, after=parse_int(after))
    return JsonResponse({"status": status, "lines": lines, "artifacts": artifact_rows(run, token)})


@require_POST
def run_cancel_view(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_for(request.user, run_id, Access.EDIT)
    if run_cancel(user=request.user, run=run):
        messages.success(request, f"Run #{run.number} is cancelled.")
    else:
        messages.info(request, f"Run #{run.number} had already finished.")
    return redirect(run_page_url(run))


@require_POST
def run_rerun_view(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_for(request.user, run_id, Access.EDIT)
    try:
        new_run = run_resubmit(user=request.user, run=run)  # type: ignore[arg-type]
    except SpecError as exc:  # a spec stored before today's rules: say why, change nothing
        messages.error(request, f"Cannot re-run #{run.number}: {exc}")
        return redirect(run_page_url(run))
    messages.success(request, f"Queued run #{new_run.number}, a re-run of #{run.number}.")
    return redirect(run_page_url(new_run))


@require_POST
def run_notes_view(request: HttpRequest, run_id: int) -> HttpResponse:
    run = run_for(request.user, run_id, Access.EDIT)
    try:
        run_notes_set(user=request.user, run=run, notes=request.POST.get("notes", "").replace("\r\n", "\n"))  # type: ignore[arg-type]
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Notes saved.")
    return redirect(run_page_url(run))


@require_GET
def artifact_download(request: HttpRequest, run_id: int, artifact_id: int, token: str | None = None) -> FileResponse:
    run = run_for(request.user, run_id, link_token=token)
    artifact = get_object_or_404(Artifact, id=artifact_id, run=run)
    return _attachment(artifact.storage_path, posixpath.basename(artifact.name))


@require_GET
def code_download(request: HttpRequest, run_id: int, token: str | None = None) -> FileResponse:
    run = run_for(request.user, run_id, link_token=token)
    if not run.code_path:
        raise Http404("This run has no code")
    name = run.entrypoint if run.code_path.endswith(".py") else f"run-{run.number}-code.zip"
    return _attachment(run.code_path, name)


def _attachment(path: str, filename: str) -> FileResponse:
    try:
        return stored_file_response(path, filename)
    except FileNotFoundError:
        raise Http404("The file is missing from storage") from None
