# The API's run list (selectors.project_run_page) pages and counts a project's live runs by id: with
# this partial index that is an index-only scan of that project's entries, not a walk of every run.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0014_run_state_paused'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='run',
            index=models.Index(condition=models.Q(('deleted_at__isnull', True)), fields=['project', 'id'], name='run_project_live_id'),
        ),
    ]
