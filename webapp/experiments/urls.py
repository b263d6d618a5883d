from django.urls import path

from webapp.experiments import assets, views

urlpatterns = [
    path("p/<id:project_id>/submit/", views.submit, name="run_submit"),
    path("p/<id:project_id>/runs/<id:number>/", views.run_page, name="run_page"),
    path("runs/<id:run_id>/", views.run_detail, name="run_detail"),  # the old address: a permanent redirect
    path("runs/<id:run_id>/metrics.json", views.run_metrics_json, name="run_metrics_json"),
    path("runs/<id:run_id>/logs.json", views.run_logs_json, name="run_logs_json"),
    path("runs/<id:run_id>/cancel/", views.run_cancel_view, name="run_cancel"),
    path("runs/<id:run_id>/rerun/", views.run_rerun_view, name="run_rerun"),
    path("runs/<id:run_id>/notes/", views.run_notes_view, name="run_notes"),
    path("runs/<id:run_id>/code/", views.code_download, name="run_code"),
    path("runs/<id:run_id>/artifacts/<id:artifact_id>/", views.artifact_download, name="run_artifact"),
    path("share/<str:token>/runs/<id:run_id>/", views.run_shared, name="shared_run_detail"),
    path("share/<str:token>/runs/<id:run_id>/metrics.json", views.run_metrics_json, name="shared_run_metrics_json"),
    path("share/<str:token>/runs/<id:run_id>/logs.json", views.run_logs_json, name="shared_run_logs_json"),
    path("share/<str:token>/runs/<id:run_id>/code/", views.code_download, name="shared_run_code"),
    path(
        "share/<str:token>/runs/<id:run_id>/artifacts/<id:artifact_id>/",
        views.artifact_download,
        name="shared_run_artifact",
    ),
    path("assets/plotly-gl2d-<str:version>.min.js", assets.plotly_js, name="plotly_js"),
]
