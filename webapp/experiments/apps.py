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

# SQLite's side of projects migration 0004 (Project.runs_version), put back the same way: SQLite serializes
# writers, so a plain per-row bump does what PostgreSQL's deferred, once-per-transaction one does.
_BUMP = "UPDATE projects_project SET runs_version = runs_version + 1 WHERE id = {0}; "
_RUN_OF = "(SELECT project_id FROM experiments_run WHERE id = {0}.run_id)"
_SQLITE_RUNS_VERSION_TRIGGERS = {
    "kiln_run_insert": "AFTER INSERT ON experiments_run BEGIN " + _BUMP.format("NEW.project_id") + "END",
    "kiln_run_update": "AFTER UPDATE ON experiments_run BEGIN UPDATE projects_project SET runs_version = runs_version + 1 "
                       "WHERE id IN (NEW.project_id, OLD.project_id); END",
    "kiln_run_delete": "AFTER DELETE ON experiments_run BEGIN " + _BUMP.format("OLD.project_id") + "END",
    **{f"kiln_{name}_{event.lower()}": f"AFTER {event} ON experiments_{table} BEGIN "
       + _BUMP.format(_RUN_OF.format("OLD" if event == "DELETE" else "NEW")) + "END"
       for name, table in (("tag", "runtag"), ("summary", "metricsummary")) for event in ("INSERT", "UPDATE", "DELETE")},
    "kiln_run_owner_renamed": "AFTER UPDATE OF username ON auth_user WHEN OLD.username IS NOT NEW.username BEGIN "
                              "UPDATE projects_project SET runs_version = runs_version + 1 "
                              "WHERE id IN (SELECT project_id FROM experiments_run WHERE owner_id = NEW.id); END",
    "kiln_runs_version_kept": "AFTER UPDATE OF runs_version ON projects_project WHEN NEW.runs_version < OLD.runs_version "
                              "BEGIN UPDATE projects_project SET runs_version = OLD.runs_version WHERE id = NEW.id; END",
}


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
        if "projects_project" in tables and "runs_version" in _columns(connection, "projects_project"):
            for name, body in _SQLITE_RUNS_VERSION_TRIGGERS.items():
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
                cursor.execute(f"CREATE TRIGGER {name} {body}")


def _columns(connection, table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {column.name for column in connection.introspection.get_table_description(cursor, table)}


class ExperimentsConfig(AppConfig):
    name = "webapp.experiments"
    label = "experiments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_restore_sqlite_trigger, sender=self, dispatch_uid="experiments_sqlite_run_trigger")
