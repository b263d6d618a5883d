# Adaptive sweeps: a sweep's state, its controller's trial template and pruner bookkeeping; the run state
# stopped_early (longer than the old 10 characters: widening a varchar is a catalog change in PostgreSQL,
# no table rewrite). Existing sweeps stay grid/random (controlled=False) in state `running`.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0011_metric_partitions'),
    ]

    operations = [
        migrations.AddField(
            model_name='sweep',
            name='controlled',
            field=models.BooleanField(default=False, help_text="Trials made by the scheduler's sweep controller."),
        ),
        migrations.AddField(
            model_name='sweep',
            name='finished_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='sweep',
            name='max_runs',
            field=models.PositiveIntegerField(default=0, help_text='Trials to make in all (a controlled sweep; raisable).'),
        ),
        migrations.AddField(
            model_name='sweep',
            name='state',
            field=models.CharField(choices=[('running', 'Running'), ('paused', 'Paused'), ('stopped', 'Stopped'), ('finished', 'Finished')], db_index=True, default='running', max_length=10),
        ),
        migrations.AddField(
            model_name='sweep',
            name='template',
            field=models.JSONField(blank=True, default=dict, help_text="A controlled sweep's trial template: {spec, code_path, code_sha256, entrypoint}."),
        ),
        migrations.AddField(
            model_name='sweep',
            name='trial_attrs',
            field=models.JSONField(blank=True, default=dict, help_text="The pruner's bookkeeping per trial (run id -> rung values), kept across restarts."),
        ),
        migrations.AlterField(
            model_name='run',
            name='state',
            field=models.CharField(choices=[('queued', 'Queued'), ('scheduled', 'Scheduled'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('lost', 'Lost'), ('stopped_early', 'Stopped early')], db_index=True, default='queued', max_length=16),
        ),
        migrations.AlterField(
            model_name='runevent',
            name='from_state',
            field=models.CharField(blank=True, choices=[('queued', 'Queued'), ('scheduled', 'Scheduled'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('lost', 'Lost'), ('stopped_early', 'Stopped early')], max_length=16),
        ),
        migrations.AlterField(
            model_name='runevent',
            name='to_state',
            field=models.CharField(choices=[('queued', 'Queued'), ('scheduled', 'Scheduled'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('lost', 'Lost'), ('stopped_early', 'Stopped early')], max_length=16),
        ),
        migrations.AlterField(
            model_name='sweep',
            name='spec',
            field=models.JSONField(help_text='The sweep block as submitted (with its metric filled in).'),
        ),
    ]
