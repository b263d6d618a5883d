"""The submit form's Nodes and Processes-per-node inputs: a distributed code run, kept by clone-and-edit."""

import pytest

from webapp.experiments.models import Run

from .test_submit_form import _post

pytestmark = pytest.mark.django_db
CODE = {"mode": "code", "code": "import engine.distributed as dist\n", "code_filename": "train.py",
        "resources.max_minutes": "30"}


def test_two_nodes_with_their_gpus_cpus_and_processes_become_a_gang_spec(world):
    _post(world, {**CODE, "resources.nodes": "2", "resources.gpus": "0", "resources.cpus": "4",
                  "distributed.processes_per_node": "4"})

    run = Run.objects.order_by("-id").first()
    assert (run.nodes, run.processes_per_node, run.cpus, run.gpus) == (2, 4, 4, 0)
    assert run.spec["resources"]["cpus_per_node"] == 4 and run.spec["distributed"] == {"processes_per_node": 4}
    clone = world.client("owner").get(f"/p/{world.project.id}/submit/?clone={run.id}").context["form"].values
    assert (clone["resources.nodes"], clone["distributed.processes_per_node"], clone["resources.cpus"]) == ("2", "4", "4")


def test_one_worker_with_several_processes(world):
    _post(world, {**CODE, "resources.nodes": "1", "resources.cpus": "2", "distributed.processes_per_node": "2"})

    run = Run.objects.order_by("-id").first()
    assert (run.nodes, run.processes_per_node, run.is_distributed) == (1, 2, True)


def test_more_processes_than_cpus_is_refused_next_to_its_input(world):
    before = Run.objects.count()

    response = _post(world, {**CODE, "resources.cpus": "1", "distributed.processes_per_node": "3"})

    assert response.status_code == 400 and Run.objects.count() == before
    assert any("each process needs one" in e for e in response.context["form"].errors["distributed.processes_per_node"])
