"""The cluster page: why is my run waiting? Workers, the queue in fair-share order, usage and quotas."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from webapp.cluster.overview import cluster_overview


@login_required
def cluster_page(request: HttpRequest) -> HttpResponse:
    return render(request, "cluster/page.html", {"overview": cluster_overview(request.user)})  # type: ignore[arg-type]
