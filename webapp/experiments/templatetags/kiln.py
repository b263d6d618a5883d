"""Template helpers: run links that stay under a public link, durations, metric numbers."""

from __future__ import annotations

import math
from typing import Any

from django import template
from django.conf import settings
from django.urls import reverse

from webapp.experiments.assets import PLOTLY_VERSION
from webapp.experiments.live import duration_text
from webapp.experiments.submit import point_value

register = template.Library()
EM_DASH = "\u2013"  # shown for a missing value


@register.simple_tag(takes_context=True)
def run_url(context: template.Context, name: str, run: Any, *args: Any) -> str:
    """`{% run_url 'run_detail' run %}`: the shared_ variant when the page was opened through a public link."""
    token = context.get("share_token")
    if token:
        return reverse(f"shared_{name}", args=[token, run.id, *args])
    if name == "run_detail":
        return reverse("run_page", args=[run.project_id, run.number])
    return reverse(name, args=[run.id, *args])


@register.simple_tag
def plotly_url() -> str:
    return reverse("plotly_js", args=[PLOTLY_VERSION])


@register.filter
def metric(value: float | None) -> str:
    """Four significant digits, NaN, inf or -inf as such, or a dash for a missing value."""
    if value is None:
        return EM_DASH
    if math.isnan(value):
        return "NaN"
    return f"{value:.4g}"  # inf, -inf


@register.filter
def sweep_point(value: object) -> str:
    """A sweep parameter's value as the trial's name shows it (`point_value`)."""
    return point_value(value)


@register.filter
def seconds(value: float | None) -> str:
    """A duration as 1h 02m, 3m 05s or 12s."""
    return EM_DASH if value is None else duration_text(value)


@register.filter
def filesize(value: int) -> str:
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@register.simple_tag
def signup_open() -> bool:
    return bool(settings.KILN_SIGNUP_OPEN)


@register.filter
def state_label(state: str) -> str:
    """A run state as words: "stopped_early" -> "stopped early" (its label, lower case); unknown states as given."""
    from webapp.experiments.models import RunState

    try:
        return str(RunState(state).label).lower()
    except ValueError:
        return state
