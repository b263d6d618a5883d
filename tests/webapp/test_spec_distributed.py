"""Distributed specs: processes per node on one worker, or a gang of nodes; bad sizes name their field."""

import pytest

from webapp.experiments.spec import SpecError, validate_spec
from webapp.experiments.submit import CodeUpload, run_submit

from .factories import ProjectFactory


def errors(spec: dict, *, has_code: bool = True) -> list[dict[str, str]]:
    with pytest.raises(SpecError) as caught:
        validate_spec(spec, has_code=has_code)
    return caught.value.errors


def test_eight_gpus_with_eight_processes_on_one_worker():
    spec = validate_spec({"resources": {"gpus": 8}, "distributed": {"processes_per_node": 8}}, has_code=True)
    assert (spec.resources.nodes, spec.resources.node_gpus, spec.distributed.processes_per_node) == (1, 8, 8)


def test_two_nodes_of_four_gpus_and_a_cpu_only_gang():
    gpu = validate_spec({"resources": {"nodes": 2, "gpus_per_node": 4}, "distributed": {"processes_per_node": 4}},
                        has_code=True)
    assert (gpu.resources.nodes, gpu.resources.node_gpus, gpu.resources.node_cpus) == (2, 4, 1)
    cpu = validate_spec({"resources": {"nodes": 2, "cpus_per_node": 6}, "distributed": {"processes_per_node": 3}},
                        has_code=True)
    assert (cpu.resources.node_gpus, cpu.resources.node_cpus) == (0, 6)


@pytest.mark.parametrize(("spec", "field", "words"), [
    ({"resources": {"nodes": 2, "gpus_per_node": 4}, "distributed": {"processes_per_node": 8}},
     "distributed.processes_per_node", "8 processes but 4 GPUs on each node"),
    ({"resources": {"nodes": 2, "cpus_per_node": 2}, "distributed": {"processes_per_node": 3}},
     "distributed.processes_per_node", "raise resources.cpus_per_node"),
    ({"resources": {"cpus": 1}, "distributed": {"processes_per_node": 2}},
     "distributed.processes_per_node", "raise resources.cpus"),
    ({"resources": {"nodes": 2, "cpus_per_node": 2}}, "distributed", "needs distributed"),
    ({"resources": {"nodes": 2, "cpus": 2}, "distributed": {"processes_per_node": 1}}, "resources", "cpus_per_node"),
    ({"resources": {"cpus": 3, "cpus_per_node": 2}, "distributed": {"processes_per_node": 1}}, "resources", "not both"),
    ({"resources": {"nodes": 0, "cpus_per_node": 2}}, "resources.nodes", "must be >= 1"),
    ({"resources": {"nodes": True, "cpus_per_node": 2}}, "resources.nodes", "whole number"),
    ({"distributed": {"processes_per_node": 0}}, "distributed.processes_per_node", "must be >= 1"),
    ({"distributed": {"processes": 2}}, "distributed.processes", "unknown field"),
])
def test_bad_distributed_specs_name_the_field(spec, field, words):
    found = errors(spec)
    assert found[0]["field"] == field and words in found[0]["message"], found


def test_recipes_cannot_run_distributed():
    found = errors({"recipe": {"model": "mlp"}, "distributed": {"processes_per_node": 2}}, has_code=False)
    assert found[0]["field"] == "distributed" and "code run" in found[0]["message"]


@pytest.mark.django_db
def test_submit_stores_what_one_worker_holds_and_a_rerun_validates_again():
    project = ProjectFactory()
    spec = {"resources": {"nodes": 3, "gpus_per_node": 2, "cpus_per_node": 4}, "distributed": {"processes_per_node": 2}}
    run = run_submit(user=project.owner_user, project=project, spec=spec, code=CodeUpload("t.py", b"pass\n")).runs[0]
    assert (run.gpus, run.cpus, run.nodes, run.processes_per_node, run.is_distributed) == (2, 4, 3, 2, True)
    again = run_submit(user=project.owner_user, project=project, spec=run.spec,
                       code=CodeUpload("t.py", b"pass\n")).runs[0]
    assert (again.gpus, again.cpus, again.nodes) == (2, 4, 3)
