"""Health checks: the true state of the database, the broker and the workers."""
