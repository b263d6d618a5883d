"""MLflow's tracking REST API (2.0) over Kiln's own runs: `MLFLOW_TRACKING_URI=https://kiln.example` is all a script needs."""
