"""The run page's gang card: the nodes of a distributed run, their workers, ranks, states and utilisation."""

import re

import pytest

from webapp.experiments.models import NodeState, Run, RunNode
from webapp.experiments.results import MetricPoint, metrics_log
from webapp.experiments.submit import CodeUpload, run_submit

pytestmark = pytest.mark.django_db


def gang_run(world) -> Run:
    spec = {"resources": {"nodes": 2, "cpus_per_node": 4}, "distributed": {"processes_per_node": 4}}
    run = run_submit(user=world.users["owner"], project=world.project, spec=spec,
                     code=CodeUpload("train.py", b"print(1)\n")).runs[0]
    Run.objects.filter(id=run.id).update(state="running", attempt=1)
    RunNode.objects.create(run=run, attempt=1, node_rank=0, worker_name="box-a", state=NodeState.RUNNING)
    RunNode.objects.create(run=run, attempt=1, node_rank=1, worker_name="<script>alert(1)</script>",
                           state=NodeState.FAILED, reason="rank 5 <b>exited</b> with code 1")
    metrics_log(run_id=run.id, points=[MetricPoint("sys/cpu_percent", 1, 397.0, 1.0),
                                       MetricPoint("sys/node1/cpu_percent", 1, 12.0, 1.0),
                                       MetricPoint("sys/node1/memory_mb", 1, 2048.0, 1.0)])
    return run


def test_the_gang_card_lists_each_node_with_its_ranks_state_and_utilisation_escaped(world):
    run = gang_run(world)
    page = world.client("viewer").get(f"/runs/{run.id}/", follow=True).content.decode()
    card = page[page.index('id="gang"'):page.index("<h2>Metrics</h2>")]
    assert "2 nodes \u00d7 4 processes = world size 8" in card
    assert "box-a" in card and "0\u20133" in card and "4\u20137" in card
    assert "397%" in card and "12%" in card and "2048 MB" in card
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card and "<script>alert" not in card
    assert "rank 5 &lt;b&gt;exited&lt;/b&gt;" in card
    assert "2 nodes \u00d7 0 GPUs · 4 CPUs each" in page


def test_runs_that_are_not_distributed_have_no_gang_card(world):
    page = world.client("viewer").get(f"/runs/{world.run.id}/", follow=True).content.decode()
    assert 'id="gang"' not in page


def test_a_queued_gang_says_it_waits_for_all_its_nodes(world):
    spec = {"resources": {"nodes": 3, "gpus_per_node": 2}, "distributed": {"processes_per_node": 2}}
    run = run_submit(user=world.users["owner"], project=world.project, spec=spec,
                     code=CodeUpload("train.py", b"print(1)\n")).runs[0]
    page = world.client("viewer").get(f"/runs/{run.id}/", follow=True).content.decode()
    assert "3 nodes \u00d7 2 processes = world size 6" in page and "starts every node at once" in page


def test_the_gang_card_lists_every_rank_with_its_state_and_its_own_utilisation(world):
    run = gang_run(world)
    metrics_log(run_id=run.id, points=[MetricPoint("sys/rank2/cpu_percent", 1, 99.0, 1.0),
                                       MetricPoint("sys/rank2/memory_mb", 1, 321.0, 1.0),
                                       MetricPoint("sys/node1/rank6/cpu_percent", 1, 55.0, 1.0)])
    page = world.client("viewer").get(f"/runs/{run.id}/", follow=True).content.decode()
    table = page[page.index('id="gang-ranks"'):]
    table = table[:table.index("</table>")]
    rows = list(table.split("<tr>")[2:])
    assert len(rows) == 8  # world size 8: one row per rank
    cells = [re.findall(r'<td class="num">([^<]*)</td>', row)[:3] for row in rows]
    assert cells[2] == ["2", "0", "2"] and cells[6] == ["6", "1", "2"]  # rank, node, local rank
    assert "99%" in rows[2] and "321 MB" in rows[2] and "55%" in rows[6]
    states = [re.search(r"state-(\w+)", row).group(1) for row in rows]
    assert states[:4] == ["running"] * 4
    assert states[4:] == ["stopped", "failed", "stopped", "stopped"]  # node 1 failed naming rank 5
