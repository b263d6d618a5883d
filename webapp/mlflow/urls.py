"""MLflow's REST paths, mounted by webapp/urls.py under /api/2.0/mlflow/ (and /api/2.0/mlflow-artifacts/)."""

from django.urls import path

from webapp.mlflow import artifacts, model_views, views

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
    path("runs/outputs", model_views.runs_log_outputs),
    path("runs/log-model", model_views.runs_log_model),
    path("logged-models", model_views.logged_models_create),
    path("logged-models/search", model_views.logged_models_search),
    path("logged-models/<str:model_id>", model_views.logged_model),
    path("logged-models/<str:model_id>/tags", model_views.logged_model_tags),
    path("logged-models/<str:model_id>/tags/<path:tag_key>", model_views.logged_model_tag),
    path("logged-models/<str:model_id>/params", model_views.logged_model_params),
    path("logged-models/<str:model_id>/artifacts/directories", model_views.logged_model_artifacts),
]

proxied_artifacts = [
    path("artifacts", artifacts.artifacts_root),
    path("artifacts/", artifacts.artifacts_root),
    path("artifacts/<path:artifact_path>", artifacts.artifact_file),
]
