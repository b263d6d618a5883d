# Distributed runs: nodes and processes per node on the run, one RunNode per node of each attempt,
# and the rendezvous keys bridged between the nodes when there is no Redis.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cluster', '0001_initial'),
        ('experiments', '0008_external'),
    ]

    operations = [
        migrations.AlterField(
            model_name='run',
            name='gpus',
            field=models.PositiveSmallIntegerField(default=0, help_text='GPUs on each node (a one-worker run: all of them).'),
        ),
        migrations.AddField(
            model_name='run',
            name='nodes',
            field=models.PositiveSmallIntegerField(default=1, help_text='Workers the run spans (resources.nodes): a gang.'),
        ),
        migrations.AddField(
            model_name='run',
            name='processes_per_node',
            field=models.PositiveSmallIntegerField(default=1, help_text='Ranks on each node (distributed.processes_per_node), started by engine.distributed.run.'),
        ),
        migrations.CreateModel(
            name='RunNode',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('attempt', models.PositiveSmallIntegerField()),
                ('node_rank', models.PositiveSmallIntegerField()),
                ('worker_name', models.CharField(help_text='Kept when the worker row goes.', max_length=200)),
                ('gpu_indices', models.JSONField(blank=True, default=list)),
                ('rendezvous_id', models.CharField(blank=True, help_text='Random per attempt: names its rendezvous keys (never a stale one).', max_length=32)),
                ('state', models.CharField(choices=[('scheduled', 'Scheduled'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('stopped', 'Stopped')], default='scheduled', max_length=10)),
                ('exit_code', models.IntegerField(blank=True, null=True)),
                ('reason', models.CharField(blank=True, max_length=500)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='nodes_of', to='experiments.run')),
                ('worker', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='cluster.worker')),
            ],
            options={
                'ordering': ['attempt', 'node_rank'],
                'indexes': [models.Index(fields=['worker', 'state'], name='run_node_worker_state')],
                'constraints': [models.UniqueConstraint(fields=('run', 'attempt', 'node_rank'), name='unique_run_node')],
            },
        ),
        migrations.CreateModel(
            name='RendezvousKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('attempt', models.PositiveSmallIntegerField()),
                ('key', models.CharField(max_length=300)),
                ('value', models.TextField(help_text="Base64 of the value, as the ranks' FileStore keeps it.")),
                ('run', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='experiments.run')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('run', 'attempt', 'key'), name='unique_rendezvous_key')],
            },
        ),
    ]
