"""MLflow's REST paths, mounted by webapp/urls.py under /api/2.0/mlflow/ (and /api/2.0/mlflow-artifacts/)."""

from django.urls import path

from webapp.mlflow import artifacts, views

tracking = [
    path("experiments/create", views.experiments_create),
    path("experiments/get", views.experiments_get),
    path("experiments/get-by-name", views.experiments_get_by_name),
    path("experiments/search", views.experiments_search),
    path("experiments/update", views.experiments_update),
    path("experiments/delete", views.experiments_delete),
    path("experiments/restore", views.experiments_restore),
    path("experiments/set-experiment-tag", views.experiments_set_tag),
    path("experiments/delete-experiment-tag", views.experiments_delete_tag),
    path("runs/create", views.runs_create),
    path("runs/update", views.runs_update),
    path("runs/get", views.runs_get),
    path("runs/delete", views.runs_delete),
    path("runs/restore", views.runs_restore),
    path("runs/search", views.runs_search),
    path("runs/log-metric", views.runs_log_metric),
    path("runs/log-batch", views.runs_log_batch),
    path("runs/log-parameter", views.runs_log_parameter),
    path("runs/set-tag", views.runs_set_tag),
    path("runs/delete-tag", views.runs_delete_tag),
    path("runs/log-inputs", views.runs_log_inputs),
    path("metrics/get-history", views.metrics_get_history),
    path("artifacts/list", views.artifacts_list),
    path("logged-models/search", views.logged_models_search),
]

proxied_artifacts = [
    path("artifacts", artifacts.artifacts_root),
    path("artifacts/", artifacts.artifacts_root),
    path("artifacts/<path:artifact_path>", artifacts.artifact_file),
]
