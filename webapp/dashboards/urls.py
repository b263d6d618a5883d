from django.urls import path

from webapp.dashboards import views

app_name = "dashboards"

urlpatterns = [
    path("p/<id:project_id>/compare/", views.compare_page, name="compare"),
    path("p/<id:project_id>/compare/data/", views.compare_data, name="compare_data"),
    path("p/<id:project_id>/compare/export.csv", views.compare_csv, name="compare_csv"),
    path("p/<id:project_id>/sweeps/", views.sweep_list, name="sweeps"),
    path("p/<id:project_id>/sweeps/<id:sweep_id>/", views.sweep_page, name="sweep"),
    path("p/<id:project_id>/sweeps/<id:sweep_id>/data/", views.sweep_data, name="sweep_data"),
    path("p/<id:project_id>/sweeps/<id:sweep_id>/control/", views.sweep_control_view, name="sweep_control"),
    path("p/<id:project_id>/dashboards/", views.dashboard_list, name="list"),
    path("p/<id:project_id>/dashboards/<id:dashboard_id>/", views.dashboard_page, name="dashboard"),
    path("p/<id:project_id>/dashboards/<id:dashboard_id>/delete/", views.dashboard_delete, name="delete"),
    path("share/<str:token>/compare/", views.shared_compare, name="shared_compare"),
    path("share/<str:token>/compare/data/", views.shared_compare_data, name="shared_compare_data"),
    path("share/<str:token>/compare/export.csv", views.shared_compare_csv, name="shared_compare_csv"),
    path("share/<str:token>/dashboards/", views.shared_dashboard_list, name="shared_list"),
    path("share/<str:token>/dashboards/<id:dashboard_id>/", views.shared_dashboard, name="shared"),
    path("share/<str:token>/dashboards/<id:dashboard_id>/data/", views.shared_data, name="shared_data"),
    path("share/<str:token>/dashboards/<id:dashboard_id>/export.csv", views.shared_csv, name="shared_csv"),
]
