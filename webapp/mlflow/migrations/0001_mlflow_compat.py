# MLflow compatibility: experiment (project) tags and MLflow 3 logged models (a run's models, files under its artifacts).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('experiments', '0010_system_metrics_time'),
        ('projects', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='LoggedModel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('model_id', models.CharField(max_length=40, unique=True)),
                ('name', models.CharField(max_length=250)),
                ('model_type', models.CharField(blank=True, max_length=250)),
                ('status', models.CharField(choices=[('LOGGED_MODEL_PENDING', 'Pending'), ('LOGGED_MODEL_READY', 'Ready'), ('LOGGED_MODEL_UPLOAD_FAILED', 'Upload Failed')], default='LOGGED_MODEL_PENDING', max_length=30)),
                ('status_message', models.TextField(blank=True)),
                ('step', models.BigIntegerField(default=0, help_text="The run's step it was logged at (MLflow's LogOutputs).")),
                ('params', models.JSONField(default=dict, help_text="Text params, as MLflow's.")),
                ('tags', models.JSONField(default=dict, help_text="Text tags, as MLflow's.")),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('creator', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='logged_models', to='experiments.run')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='ExperimentTag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=250)),
                ('value', models.TextField(blank=True)),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='mlflow_tags', to='projects.project')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('project', 'name'), name='unique_experiment_tag')],
            },
        ),
    ]
