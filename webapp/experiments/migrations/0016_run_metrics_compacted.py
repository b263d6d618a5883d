# When `kiln compact-metrics` (webapp.experiments.retention) cut a finished run's raw metric points
# down to the points its rollups keep; NULL for every run until then. A nullable column: no rewrite.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0015_run_list_live_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='metrics_compacted_at',
            field=models.DateTimeField(blank=True, help_text='When `kiln compact-metrics` cut its raw points down to what its rollups keep.', null=True),
        ),
    ]
