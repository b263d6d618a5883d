"""Kiln's workers: the Celery app, the worker process and (later) the sandboxed run executor."""
