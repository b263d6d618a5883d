from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from webapp.accounts.views import RateLimitedLoginView, home
from webapp.health.views import healthz
from webapp.ids import IdConverter

register_converter(IdConverter, "id")  # before the apps' urls are included: they use <id:...>

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    # NOTE: the admin's own login form would bypass the sign-in limits; it gets Kiln's (then `next` leads back).
    path("admin/login/", RateLimitedLoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
    path("api/", include("webapp.api.urls")),
    path("", include("webapp.accounts.urls")),
    path("", include("webapp.projects.urls")),
    path("", include("webapp.experiments.urls")),
    path("", include("webapp.dashboards.urls")),
]
admin.site.site_header = "Kiln administration"
admin.site.site_title = "Kiln"
