"""Forms for accounts, teams and API tokens. Writes still go through the services."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm, UserCreationForm

from webapp.accounts.models import Role
from webapp.accounts.names import owner_name_problem


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=False, help_text="Optional.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    def clean_username(self) -> str:
        username = super().clean_username()
        return _free_name(username)


class AdminUserAddForm(AdminUserCreationForm):
    """The Django admin's add-user form, in the one owner namespace (reserved words allowed to operators)."""

    def clean_username(self) -> str:
        username = super().clean_username()
        return _free_name(username, allow_reserved=True)


class AdminUserEditForm(UserChangeForm):
    def clean_username(self) -> str:
        return _free_name(self.cleaned_data["username"], allow_reserved=True, user_id=self.instance.pk)


def _free_name(username: str, *, allow_reserved: bool = False, user_id: int | None = None) -> str:
    problem = owner_name_problem(username, allow_reserved=allow_reserved, user_id=user_id) if username else None
    if problem is not None:
        raise forms.ValidationError(problem, code="owner_name")
    return username


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=120)


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop CLI'.")
