from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render

from webapp.accounts.forms import SignupForm
from webapp.cluster.selectors import workers_online
from webapp.projects.selectors import projects_visible_to


def home(request: HttpRequest) -> HttpResponseBase:
    """Signed-in users see their projects and the workers; anonymous visitors get the login form right here."""
    if not request.user.is_authenticated:
        return LoginView.as_view(redirect_authenticated_user=True)(request)
    projects = projects_visible_to(request.user).order_by("name", "id")
    return render(request, "home.html", {"workers": workers_online(), "projects": projects})


def signup(request: HttpRequest) -> HttpResponseBase:
    if not settings.KILN_SIGNUP_OPEN:
        return render(request, "registration/signup_closed.html", status=403)
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to Kiln, {user.get_username()}.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)
