from django.apps import AppConfig


class MlflowConfig(AppConfig):
    """The MLflow-compatible API; its tables hold what Kiln has no place of its own for (experiment tags, logged models)."""

    name = "webapp.mlflow"
    label = "mlflow_compat"  # not "mlflow": the MLflow package's own name
    default_auto_field = "django.db.models.BigAutoField"
