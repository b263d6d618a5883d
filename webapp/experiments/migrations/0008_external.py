# Run kind "external" (runs logged by outside clients) and key=value run tags (MLflow keys up to 250 characters).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0007_artifact_model_metadata'),
    ]

    operations = [
        migrations.AddField(
            model_name='runtag',
            name='value',
            field=models.TextField(blank=True, help_text="A tag's value (MLflow tags are key=value); empty for a plain label."),
        ),
        migrations.AlterField(
            model_name='run',
            name='kind',
            field=models.CharField(choices=[('code', 'Code'), ('recipe', 'Recipe'), ('external', 'External')], max_length=10),
        ),
        migrations.AlterField(
            model_name='runtag',
            name='name',
            field=models.CharField(db_index=True, max_length=250),
        ),
    ]
