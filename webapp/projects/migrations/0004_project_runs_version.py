# Project.runs_version, kept by PostgreSQL triggers (SQLite's: experiments.apps, restored after every migrate).
# A row change in the project's runs, their tags or metric summaries (or a rename of a run's owner) bumps it
# once per transaction, at commit (deferred: the project row is locked only while the transaction commits);
# a stale ORM save never sets it back. Answers about a project's runs are cached under it (projects.runs_cache).

from django.conf import settings
from django.db import migrations, models

_TRIGGERS = [
    # once per transaction for the project it last bumped (a transaction-local setting holds its id):
    # a transaction touching one project bumps it once, one touching several may bump one twice
    "CREATE FUNCTION kiln_runs_changed(project bigint) RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
    "IF project IS NULL OR current_setting('kiln.runs_changed', true) = project::text THEN RETURN; END IF; "
    "PERFORM set_config('kiln.runs_changed', project::text, true); "
    "UPDATE projects_project SET runs_version = runs_version + 1 WHERE id = project; END $$",
    "CREATE FUNCTION kiln_run_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP <> 'INSERT' THEN PERFORM kiln_runs_changed(OLD.project_id); END IF; "
    "IF TG_OP <> 'DELETE' THEN PERFORM kiln_runs_changed(NEW.project_id); END IF; RETURN NULL; END $$",
    "CREATE FUNCTION kiln_run_part_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP <> 'INSERT' THEN PERFORM kiln_runs_changed((SELECT project_id FROM experiments_run WHERE id = OLD.run_id)); END IF; "
    "IF TG_OP <> 'DELETE' THEN PERFORM kiln_runs_changed((SELECT project_id FROM experiments_run WHERE id = NEW.run_id)); END IF; "
    "RETURN NULL; END $$",
    "CREATE FUNCTION kiln_run_owner_renamed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "UPDATE projects_project SET runs_version = runs_version + 1 "
    "WHERE id IN (SELECT project_id FROM experiments_run WHERE owner_id = NEW.id); RETURN NULL; END $$",
    "CREATE FUNCTION kiln_runs_version_kept() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.runs_version < OLD.runs_version THEN NEW.runs_version := OLD.runs_version; END IF; RETURN NEW; END $$",
    "CREATE CONSTRAINT TRIGGER kiln_run_changed AFTER INSERT OR UPDATE OR DELETE ON experiments_run "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kiln_run_changed()",
    "CREATE CONSTRAINT TRIGGER kiln_run_tag_changed AFTER INSERT OR UPDATE OR DELETE ON experiments_runtag "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kiln_run_part_changed()",
    "CREATE CONSTRAINT TRIGGER kiln_run_summary_changed AFTER INSERT OR UPDATE OR DELETE ON experiments_metricsummary "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kiln_run_part_changed()",
    "CREATE TRIGGER kiln_run_owner_renamed AFTER UPDATE OF username ON auth_user FOR EACH ROW "
    "WHEN (OLD.username IS DISTINCT FROM NEW.username) EXECUTE FUNCTION kiln_run_owner_renamed()",
    "CREATE TRIGGER kiln_runs_version_kept BEFORE UPDATE ON projects_project FOR EACH ROW "
    "EXECUTE FUNCTION kiln_runs_version_kept()",
]
_UNTRIGGERS = [
    "DROP TRIGGER IF EXISTS kiln_run_changed ON experiments_run",
    "DROP TRIGGER IF EXISTS kiln_run_tag_changed ON experiments_runtag",
    "DROP TRIGGER IF EXISTS kiln_run_summary_changed ON experiments_metricsummary",
    "DROP TRIGGER IF EXISTS kiln_run_owner_renamed ON auth_user",
    "DROP TRIGGER IF EXISTS kiln_runs_version_kept ON projects_project",
    "DROP FUNCTION IF EXISTS kiln_run_changed()",
    "DROP FUNCTION IF EXISTS kiln_run_part_changed()",
    "DROP FUNCTION IF EXISTS kiln_run_owner_renamed()",
    "DROP FUNCTION IF EXISTS kiln_runs_version_kept()",
    "DROP FUNCTION IF EXISTS kiln_runs_changed(bigint)",
]


def _on_postgresql(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)
    return apply


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0003_project_soft_delete'),
        ('experiments', '0015_run_list_live_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='project',
            name='runs_version',
            field=models.BigIntegerField(default=0, editable=False, help_text="Changes with every transaction that changes the project's runs, their tags or metric summaries (database triggers: migration 0004, experiments.apps on SQLite) and never goes back: the run list's cache key."),
        ),
        migrations.RunPython(_on_postgresql(_TRIGGERS), _on_postgresql(_UNTRIGGERS)),
    ]
