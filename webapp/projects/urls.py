from django.urls import path

from webapp.projects import views

urlpatterns = [
    path("projects/new/", views.project_new, name="project_new"),
    path("p/<id:project_id>/", views.project_detail, name="project_detail"),
    path("p/<id:project_id>/columns/", views.project_columns, name="project_columns"),
    path("p/<id:project_id>/settings/", views.project_settings, name="project_settings"),
    path("p/<id:project_id>/settings/rotate/", views.project_rotate, name="project_rotate"),
    path("p/<id:project_id>/settings/revoke/", views.project_revoke_link, name="project_revoke_link"),
    path("p/<id:project_id>/settings/delete/", views.project_delete_view, name="project_delete"),
    path("share/<str:token>/", views.project_shared, name="project_shared"),
]
