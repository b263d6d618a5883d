from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render

from webapp.cluster.selectors import workers_online


def home(request: HttpRequest) -> HttpResponseBase:
    """Signed-in users see their home; anonymous visitors get the login form right here."""
    if not request.user.is_authenticated:
        return LoginView.as_view(redirect_authenticated_user=True)(request)
    return render(request, "home.html", {"workers": workers_online()})
