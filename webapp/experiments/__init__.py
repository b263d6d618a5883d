"""Experiments: runs and sweeps, their lifecycle, metrics, logs and artifacts."""
