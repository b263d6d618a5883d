from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp.accounts.views import home
from webapp.health.views import healthz

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("webapp.api.urls")),
    path("", include("webapp.accounts.urls")),
    path("", include("webapp.projects.urls")),
    path("", include("webapp.experiments.urls")),
    path("", include("webapp.dashboards.urls")),
]
admin.site.site_header = "Kiln administration"
admin.site.site_title = "Kiln"
