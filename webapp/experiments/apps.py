from django.apps import AppConfig
from django.db.models.signals import post_migrate

# NOTE: SQLite rebuilds a table to alter a column, dropping its triggers: after every migrate the run
# table's delete trigger (migrations 0004/0006 on PostgreSQL, where ALTER TABLE keeps it) is put back,
# so on SQLite too no point, charted or superseded, outlives its run.
_SQLITE_RUN_DELETE_TRIGGER = (
    "CREATE TRIGGER experiments_run_delete_metrics AFTER DELETE ON experiments_run FOR EACH ROW BEGIN "
    "DELETE FROM experiments_metric WHERE run_id = OLD.id; "
    "DELETE FROM experiments_supersededmetric WHERE run_id = OLD.id; END"
)


def _restore_sqlite_trigger(sender, using, **kwargs) -> None:
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    tables = set(connection.introspection.table_names())
    if not {"experiments_run", "experiments_metric", "experiments_supersededmetric"} <= tables:
        return  # migrated back before the tables existed
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS experiments_run_delete_metrics")
        cursor.execute(_SQLITE_RUN_DELETE_TRIGGER)


class ExperimentsConfig(AppConfig):
    name = "webapp.experiments"
    label = "experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_restore_sqlite_trigger, sender=self, dispatch_uid="experiments_sqlite_run_trigger")
