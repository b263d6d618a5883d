# Usernames and team slugs become one namespace: teams that clash are renamed (reported here); team invitations.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def resolve_owner_clashes(apps, schema_editor):
    from webapp.accounts.names import owner_clashes_resolve

    users = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    renamed = owner_clashes_resolve(users=users, teams=apps.get_model("accounts", "Team"))
    for old, new in renamed:
        print(f"\n  kiln: the team {old!r} clashed with a user or a reserved name; it is now {new!r}", end="")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(resolve_owner_clashes, migrations.RunPython.noop, elidable=False),
        migrations.CreateModel(
            name='TeamInvitation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(choices=[('viewer', 'Viewer'), ('editor', 'Editor'), ('admin', 'Admin')], default='viewer', max_length=10)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('invited_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('invitee', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='team_invitations', to=settings.AUTH_USER_MODEL)),
                ('team', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invitations', to='accounts.team')),
            ],
            options={
                'ordering': ['-created_at'],
                'constraints': [models.UniqueConstraint(fields=('team', 'invitee'), name='one_invitation_per_team_user')],
            },
        ),
    ]
