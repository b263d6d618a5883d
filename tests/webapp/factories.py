"""Test data builders."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from webapp.accounts.models import Membership, Role, Team
from webapp.cluster.models import Worker
from webapp.projects.models import Project, Visibility


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda team: team.slug.title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.VIEWER


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda project: project.slug.title())
    owner_user = factory.SubFactory(UserFactory)
    visibility = Visibility.PRIVATE


class WorkerFactory(factory.django.DjangoModelFactory):
    """An online worker that heartbeated just now; isolated (code runs may go there) unless `isolated=False`."""

    class Meta:
        model = Worker

    name = factory.Sequence(lambda n: f"worker-{n}")
    hostname = "host"
    queue = factory.LazyAttribute(lambda worker: f"kiln.worker.{worker.name}")
    cpu_slots = 4
    started_at = factory.LazyFunction(timezone.now)
    heartbeat_at = factory.LazyFunction(timezone.now)
    isolated = True
