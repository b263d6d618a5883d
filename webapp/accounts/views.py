from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render

from webapp.accounts.forms import SignupForm
from webapp.accounts.limits import login_blocked, login_failed, signup_attempt
from webapp.accounts.selectors import invitations_of
from webapp.cluster.selectors import workers_online
from webapp.projects.selectors import projects_visible_to


class RateLimitedLoginView(LoginView):
    """Django's login page; a client that failed too often gets 429 before any password is checked."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        wait = login_blocked(request, username)
        if wait is None:
            return super().post(request, *args, **kwargs)
        form = AuthenticationForm(request, initial={"username": username})
        context = self.get_context_data(form=form, retry_minutes=_minutes(wait))
        return _too_many(self.render_to_response(context, status=429), wait)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        login_failed(self.request, self.request.POST.get("username", ""))
        return super().form_invalid(form)


def home(request: HttpRequest) -> HttpResponseBase:
    """Signed-in users see their projects and the workers; anonymous visitors get the login form right here."""
    if not request.user.is_authenticated:
        return RateLimitedLoginView.as_view()(request)
    projects = projects_visible_to(request.user).order_by("name", "id")
    context = {"workers": workers_online(), "projects": projects, "invitation_count": invitations_of(request.user).count()}
    return render(request, "home.html", context)


def signup(request: HttpRequest) -> HttpResponseBase:
    if not settings.KILN_SIGNUP_OPEN:
        return render(request, "registration/signup_closed.html", status=403)
    if request.user.is_authenticated:
        return redirect("home")
    if request.method == "POST":
        wait = signup_attempt(request)
        if wait is not None:
            form = SignupForm(initial={"username": request.POST.get("username", "")})
            context = {"form": form, "retry_minutes": _minutes(wait)}
            return _too_many(render(request, "registration/signup.html", context, status=429), wait)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to Kiln, {user.get_username()}.")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


def _too_many(response: HttpResponse, wait: int) -> HttpResponse:
    response["Retry-After"] = str(wait)
    return response


def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))
