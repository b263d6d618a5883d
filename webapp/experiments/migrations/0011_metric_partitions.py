# The metric table becomes a PostgreSQL table partitioned by HASH (run_id) into PARTITIONS parts,
# its rows moved over. Every read and write of points names its runs (a run's ingestion, its chart's
# range reads, the compare view's runs): each touches only its runs' partitions, whose indexes stay
# 1/PARTITIONS of the whole (shallower, and the hot runs' pages stay in memory), and VACUUM works
# partition by partition. Hash, not range by run id: no partitions to create as runs are added, and the
# load spreads evenly however old a run is. (Run ids are dense and a busy run is as likely old as new.)
#
# A partitioned table's unique indexes must hold the partition key: the point's own key (run, key, step),
# already unique, becomes the PRIMARY KEY (named as the model's constraint, so the ORM's state holds).
# `id` stays a column numbered by a sequence (the ORM's pk) but loses its index: nothing looks a point
# up by id, and one index fewer is cheaper ingestion. SQLite (embedded mode) has no partitioning: there
# the table stays as it is. Moving the rows takes a while on a large table (minutes per 100 M points).

from django.db import migrations

TABLE = "experiments_metric"
OLD = "experiments_metric_unpartitioned"
PARTITIONS = 32  # fixed once created: changing it means moving every row again
COLUMNS = "id, run_id, key, step, value, wall_time"


def _partitioned_table(old: str, new: str, *, partitioned: bool) -> list[str]:
    """Statements that rebuild `old` (already renamed) as `new` with its rows, then drop it."""
    by = " PARTITION BY HASH (run_id)" if partitioned else ""
    statements = [
        f"CREATE TABLE {new} (id bigint NOT NULL, run_id bigint NOT NULL, key varchar(200) NOT NULL, "
        "step bigint NOT NULL, value double precision NULL, wall_time double precision NOT NULL, "
        f"CONSTRAINT unique_metric_point {'PRIMARY KEY' if partitioned else 'UNIQUE'} (run_id, key, step)){by}",
    ]
    if partitioned:
        statements += [
            f"CREATE TABLE {new}_p{i:02d} PARTITION OF {new} FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})"
            for i in range(PARTITIONS)
        ]
    else:
        statements.append(f"ALTER TABLE {new} ADD PRIMARY KEY (id)")
    statements += [
        f"INSERT INTO {new} ({COLUMNS}) SELECT {COLUMNS} FROM {old}",  # noqa: S608 -- fixed names
        f"DROP TABLE {old}",  # its id sequence goes with it; the next one starts past its last id
        f"CREATE SEQUENCE {new}_id_seq OWNED BY {new}.id",
        f"SELECT setval('{new}_id_seq', COALESCE((SELECT MAX(id) FROM {new}), 0) + 1, false)",  # noqa: S608
        f"ALTER TABLE {new} ALTER COLUMN id SET DEFAULT nextval('{new}_id_seq')",
        f"ANALYZE {new}",
    ]
    return statements


def _move(*, partitioned: bool):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return  # SQLite: no declarative partitioning; the table stays as it is
        schema_editor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
        schema_editor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT unique_metric_point TO {OLD}_point")
        for sql in _partitioned_table(OLD, TABLE, partitioned=partitioned):
            schema_editor.execute(sql)
    return apply


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0010_system_metrics_time"),
    ]

    operations = [
        migrations.RunPython(_move(partitioned=True), _move(partitioned=False)),
    ]
