from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from webapp.accounts.views import RateLimitedLoginView, home
from webapp.health.views import healthz
from webapp.ids import IdConverter
from webapp.mlflow import urls as mlflow_urls

register_converter(IdConverter, "id")  # before the apps' urls are included: they use <id:...>

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    # NOTE: the admin's own login form would bypass the sign-in limits; it gets Kiln's (then `next` leads back).
    path("admin/login/", RateLimitedLoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
    # MLflow's tracking REST API over Kiln's runs (before api/: Kiln's own API never claims these paths)
    path("api/2.0/mlflow/", include(mlflow_urls.tracking)),
    path("api/2.0/mlflow-artifacts/", include(mlflow_urls.proxied_artifacts)),
    path("api/", include("webapp.api.urls")),
    path("", include("webapp.accounts.urls")),
    path("", include("webapp.projects.urls")),
    path("", include("webapp.experiments.urls")),
    path("", include("webapp.dashboards.urls")),
    path("", include("webapp.cluster.urls")),
]
admin.site.site_header = "Kiln administration"
admin.site.site_title = "Kiln"
