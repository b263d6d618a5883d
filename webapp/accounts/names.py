"""Owner names: usernames and team slugs are one namespace, so `owner/slug` always means one owner.

A name is free when no user and no team holds it (compared case-insensitively, as slugs are
lower-case) and it is not one of the words Kiln's own addresses use.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model

# Top-level paths (webapp/urls.py and the apps' urls) and words that would mislead as an owner.
RESERVED_OWNER_NAMES = frozenset({
    "accounts", "admin", "api", "assets", "docs", "healthz", "invitations", "login", "logout", "p",
    "projects", "runs", "share", "signup", "static", "teams", "tokens", "new", "settings", "kiln", "root",
    "system", "me", "media",
})


def owner_name_taken(
    name: str, *, users: type[Model] | None = None, teams: type[Model] | None = None, user_id: int | None = None,
) -> str | None:
    """What holds `name` already ("user" or "team"; the user `user_id` aside), else None. Models may be a migration's."""
    from webapp.accounts.models import Team

    users = users or get_user_model()
    teams = teams or Team
    if users._default_manager.filter(username__iexact=name).exclude(pk=user_id).exists():
        return "user"
    if teams._default_manager.filter(slug__iexact=name).exists():
        return "team"
    return None


def owner_name_problem(name: str, *, allow_reserved: bool = False, user_id: int | None = None) -> str | None:
    """Why `name` is not free for a new user or team (or for the user `user_id`), else None.

    `allow_reserved` is for operators (the first admin, the Django admin): a reserved word is theirs to take.
    """
    if not allow_reserved and name.lower() in RESERVED_OWNER_NAMES:
        return f"{name!r} is reserved by Kiln; choose another name."
    holder = owner_name_taken(name, user_id=user_id)
    if holder is not None:
        return f"The name {name!r} is taken by a {holder}: users and teams share one namespace."
    return None


def owner_name_check(name: str, *, field: str, allow_reserved: bool = False, user_id: int | None = None) -> None:
    """Raise ValidationError on `field` unless `name` is free (see `owner_name_problem`)."""
    problem = owner_name_problem(name, allow_reserved=allow_reserved, user_id=user_id)
    if problem is not None:
        raise ValidationError({field: problem})


def username_guard(sender: type[Model], instance: Model, update_fields: frozenset[str] | None = None, **kwargs: object) -> None:
    """pre_save on the user model: whatever the write path (shell, createsuperuser), no username equals a team's slug."""
    from webapp.accounts.models import Team

    if update_fields is not None and "username" not in update_fields:
        return
    username = instance.get_username()  # type: ignore[attr-defined]
    if Team.objects.filter(slug__iexact=username).exists():
        raise ValidationError({"username": f"The name {username!r} is taken by a team: users and teams share one namespace."})


def owner_clashes_resolve(*, users: type[Model], teams: type[Model]) -> list[tuple[str, str]]:
    """Rename every team whose slug a user holds (or Kiln reserves) to `<slug>-team`, `<slug>-team-2`, ...

    Deterministic (teams by id); returns (old, new) slugs. Takes model classes so a migration can call it.
    """
    renamed = []
    for team in teams._default_manager.order_by("id"):
        slug = team.slug  # type: ignore[attr-defined]
        clashing = slug.lower() in RESERVED_OWNER_NAMES or users._default_manager.filter(username__iexact=slug).exists()
        if not clashing:
            continue
        new = _free_slug(f"{slug[:50]}-team", users=users, teams=teams)
        team.slug = new  # type: ignore[attr-defined]
        team.save(update_fields=["slug"])
        renamed.append((slug, new))
    return renamed


def _free_slug(base: str, *, users: type[Model], teams: type[Model]) -> str:
    candidate, n = base, 1
    while owner_name_taken(candidate, users=users, teams=teams) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
