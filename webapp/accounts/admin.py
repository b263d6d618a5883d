from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from webapp.accounts.forms import AdminUserAddForm, AdminUserEditForm

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class KilnUserAdmin(UserAdmin):
    """Django's user admin whose forms keep usernames clear of team slugs (webapp.accounts.names)."""

    add_form = AdminUserAddForm
    form = AdminUserEditForm
