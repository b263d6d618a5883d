# System metrics (sys/*) are series over wall time: their step was the sampling second (a unix
# timestamp such as 1796155671); it becomes the sample's number in its (run, key) series, 0, 1, 2, ...
# in the order of the old steps (their times), and each point keeps its wall_time. The summaries and
# rollups of those series are rebuilt from the renumbered points (their last_step was the timestamp).
# Superseded points (audit only) are left as they were. Reversing keeps the sequence: every reader
# takes a sys/* point's time from its wall_time.

import numpy as np
from django.db import migrations

SYSTEM_LIKE = "sys/%"
# NOTE: renumbered in two passes through steps below any a client can log (the API takes
# -2**62 .. 2**62), so no renumbered point ever meets a not yet renumbered one in the unique index.
PARKED = -(2**62) - 1


def renumber(apps, schema_editor):
    Metric = apps.get_model("experiments", "Metric")
    table = schema_editor.quote_name(Metric._meta.db_table)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET step = %s - ranked.rn FROM ("  # noqa: S608 -- the model's own table
            f"SELECT id, ROW_NUMBER() OVER (PARTITION BY run_id, key ORDER BY step) - 1 AS rn FROM {table} "
            "WHERE key LIKE %s) AS ranked "
            f"WHERE {table}.id = ranked.id",
            [PARKED, SYSTEM_LIKE],
        )
        cursor.execute(f"UPDATE {table} SET step = %s - step WHERE key LIKE %s AND step <= %s",  # noqa: S608
                       [PARKED, SYSTEM_LIKE, PARKED])
    rebuild(apps)


def rebuild(apps):
    """Each sys/* series' summary and rollup, as `results._state_of` and `_states_store` write them."""
    from webapp.experiments import rollup

    Metric = apps.get_model("experiments", "Metric")
    MetricSummary = apps.get_model("experiments", "MetricSummary")
    MetricRollup = apps.get_model("experiments", "MetricRollup")
    series = Metric.objects.filter(key__startswith="sys/").values_list("run_id", "key").distinct()
    for run_id, key in list(series):
        rows = list(Metric.objects.filter(run_id=run_id, key=key).order_by("step").values_list("step", "value", "wall_time"))
        steps = np.array([r[0] for r in rows], np.int64)
        values = np.array([np.nan if r[1] is None else r[1] for r in rows], np.float64)
        walls = np.array([r[2] for r in rows], np.float64)
        finite = values[np.isfinite(values)]
        last = float(values[-1])
        MetricSummary.objects.update_or_create(run_id=run_id, key=key, defaults={
            "last": None if np.isnan(last) else last, "last_step": int(steps[-1]), "count": len(rows),
            "min": float(finite.min()) if len(finite) else None, "max": float(finite.max()) if len(finite) else None,
        })
        buckets = rollup.build(steps, values, walls, rollup.width_for(len(rows)))
        size = rollup.CHUNK_BUCKETS
        MetricRollup.objects.filter(run_id=run_id, key=key).delete()
        MetricRollup.objects.bulk_create([
            MetricRollup(run_id=run_id, key=key, chunk=offset // size, count=len(rows),
                         buckets=rollup.encode(buckets[offset : offset + size]))
            for offset in range(0, len(buckets), size)
        ])


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0009_distributed'),
    ]

    operations = [
        migrations.RunPython(renumber, migrations.RunPython.noop),
    ]
