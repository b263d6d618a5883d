"""Forms for creating projects and changing who sees them."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import User

from webapp.accounts.models import Team
from webapp.accounts.selectors import teams_of, teams_user_can_edit
from webapp.projects.models import Project, Visibility


class TeamChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Team) -> str:
        return f"{obj.name} ({obj.slug})"


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)
    team = TeamChoiceField(
        queryset=Team.objects.none(), required=False, empty_label="Me (a personal project)", label="Owner",
        help_text="A team's editors and admins can create projects the whole team shares.",
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams_user_can_edit(user)  # type: ignore[attr-defined]


class VisibilityForm(forms.Form):
    visibility = forms.ChoiceField(choices=Visibility.choices, widget=forms.RadioSelect)
    team = TeamChoiceField(
        queryset=Team.objects.none(), required=False, empty_label="(choose a team)",
        help_text="For 'Team': the team whose members see this project (viewers read, editors and admins submit).",
    )

    def __init__(self, *args, user: User, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        if project.team_owned:
            del self.fields["team"]
        else:
            self.fields["team"].queryset = teams_of(user)  # type: ignore[attr-defined]


class DeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the project's slug to confirm")

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["confirm"].label = f"Type {project.slug} to confirm"  # the slug to type, shown where it is typed
        self.fields["confirm"].widget.attrs.update(placeholder=project.slug, autocomplete="off")

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != self.project.slug:
            raise forms.ValidationError(f"Type {self.project.slug} to delete this project.")
        return value
