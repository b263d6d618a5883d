"""API tokens: create (the token is shown once, in the response to the POST), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from webapp.accounts.forms import TokenCreateForm
from webapp.accounts.selectors import tokens_of
from webapp.accounts.tokens import token_create, token_revoke


@never_cache
@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        row, secret = token_create(user=request.user, name=form.cleaned_data["name"])  # type: ignore[arg-type]
        created = {"row": row, "secret": secret}
        form = TokenCreateForm()
    context = {"tokens": tokens_of(request.user), "form": form, "created": created}  # type: ignore[arg-type]
    return render(request, "tokens/list.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    if not token_revoke(user=request.user, token_id=token_id):  # type: ignore[arg-type]
        raise Http404("No such token")
    messages.success(request, "Token revoked; it no longer works.")
    return redirect("token_list")
