"""Saved dashboards, the data endpoint's answers, and the CSV export."""

import csv
import io
import itertools
import json

import pytest
from django.urls import reverse

from webapp.dashboards.models import Dashboard
from webapp.dashboards.services import dashboard_save
from webapp.dashboards.state import CompareState, StateError
from webapp.experiments.models import MetricRollup

from .conftest import log_curve, public

pytestmark = pytest.mark.django_db


def steps(series: dict) -> list[int]:
    """The steps of one series of the data endpoint (sent as differences)."""
    return list(itertools.accumulate(series["dstep"]))


def data(world, query: str, actor: str = "viewer") -> dict:
    response = world.client(actor).get(reverse("dashboards:compare_data", args=[world.project.id]) + "?" + query)
    assert response.status_code == 200, response.content
    return response.json()


def test_save_list_open_and_delete_a_dashboard(world):
    editor = world.client("editor")
    state = f"runs={world.run_ids}&key=loss&x=rel&smooth=0.8&log=1&best=loss&mode=min"
    response = editor.post(reverse("dashboards:list", args=[world.project.id]), {"name": "  LR   study ", "state": state})
    dashboard = Dashboard.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("dashboards:dashboard", args=[world.project.id, dashboard.id])
    assert dashboard.name == "LR study" and dashboard.owner == world.users["editor"]
    assert dashboard.state["smooth"] == 0.8 and dashboard.state["x"] == "rel" and dashboard.state["runs"] == [r.id for r in world.runs]

    listing = world.client("viewer").get(reverse("dashboards:list", args=[world.project.id])).content.decode()
    assert "LR study" in listing and "Delete" not in listing
    page = world.client("viewer").get(reverse("dashboards:dashboard", args=[world.project.id, dashboard.id]))
    config = json.loads(page.content.decode().split('id="compare-config" type="application/json">')[1].split("</script>")[0])
    assert config["state"]["smooth"] == 0.8 and config["state"]["log"] is True and len(config["runs"]) == 3

    editor.post(reverse("dashboards:delete", args=[world.project.id, dashboard.id]))
    assert not Dashboard.objects.exists()


def test_saving_under_an_existing_name_replaces_it_and_bad_input_changes_nothing(world):
    owner = world.users["owner"]
    first = dashboard_save(user=owner, project=world.project, name="mine", state=CompareState(runs=(world.runs[0].id,)))
    second = dashboard_save(user=owner, project=world.project, name="mine", state=CompareState(sweep=world.sweep.id))
    assert first.id == second.id and Dashboard.objects.get().state["sweep"] == world.sweep.id
    response = world.client("owner").post(reverse("dashboards:list", args=[world.project.id]), {"name": "", "state": "runs=1"})
    assert response.status_code == 400 and "name" in response.content.decode()
    with pytest.raises(StateError):
        dashboard_save(user=owner, project=world.project, name="x", state=CompareState(runs=(999_999,)))
    assert Dashboard.objects.count() == 1


def test_user_content_is_escaped_in_pages(world):
    run = world.runs[0]
    type(run).objects.filter(id=run.id).update(name="<script>alert(1)</script>")
    dashboard_save(user=world.users["owner"], project=world.project, name="<img src=x onerror=alert(1)>",
                   state=CompareState(runs=(run.id,)))
    listing = world.client("viewer").get(reverse("dashboards:list", args=[world.project.id])).content.decode()
    assert "<img src=x" not in listing and "&lt;img src=x" in listing
    page = world.client("viewer").get(reverse("dashboards:compare", args=[world.project.id]) + f"?runs={run.id}").content.decode()
    assert "<script>alert(1)</script>" not in page and "\\u003Cscript\\u003Ealert(1)" in page


def test_the_data_endpoint_answers_compact_arrays_per_run(world):
    body = data(world, f"runs={world.run_ids}&key=loss")
    assert body["final"] is True and [s["run"] for s in body["series"]] == [r.id for r in world.runs]
    first = body["series"][0]
    assert steps(first) == list(range(50)) and first["y"][0] == 2.0 and first["y"][1] == 1.81818
    assert not first["sampled"] and "t" not in first


def test_one_request_carries_every_key_of_the_view(world):
    body = data(world, f"runs={world.run_ids}&key=loss&key=epoch")
    assert body["keys"] == ["loss", "epoch"]
    assert [(s["key"], s["run"]) for s in body["series"]] == [(k, r.id) for k in ("loss", "epoch") for r in world.runs]
    assert all(len(s["dstep"]) == len(s["y"]) for s in body["series"])
    assert steps(body["series"][-1]) == [0, 10, 20, 30, 40]


def test_each_chart_shares_the_response_budget_among_its_own_runs(monkeypatch, world):
    monkeypatch.setattr("webapp.dashboards.series.RESPONSE_BUDGET", 300)  # 3 runs a chart: 100 points each
    body = data(world, f"runs={world.run_ids}&key=loss&key=epoch")
    assert body["budget"] == 100 and all(len(s["y"]) <= 100 for s in body["series"])


def test_time_axes_send_seconds_after_the_first_point(world):
    series = data(world, f"runs={world.runs[0].id}&key=loss&x=rel")["series"][0]
    assert series["t0"] == 1_700_000_000.0 and series["t"][:3] == [0.0, 0.5, 1.0]


def test_another_metric_as_x_axis_is_joined_on_step(world):
    series = data(world, f"runs={world.runs[0].id}&key=loss&x=metric:epoch")["series"][0]
    assert series["x"][:12] == [0.0] * 10 + [1.0, 1.0] and series["x"][-1] == 4.0
    zoomed = data(world, f"runs={world.runs[0].id}&key=loss&x=metric:epoch&lo=15&hi=25")["series"][0]
    assert steps(zoomed) == list(range(15, 26)) and zoomed["x"] == [1.0] * 5 + [2.0] * 6


def test_live_updates_send_only_points_after_the_last_step(world):
    run = world.runs[0]
    log_curve(run, "loss", [0.01, 0.02], start=50)
    body = data(world, f"runs={world.run_ids}&key=loss&after={run.id}:49,{world.runs[1].id}:49")
    by_run = {s["run"]: s for s in body["series"]}
    assert steps(by_run[run.id]) == [50, 51] and steps(by_run[world.runs[1].id]) == []
    assert len(by_run[world.runs[2].id]["dstep"]) == 50  # not in `after`: sent whole


def test_bad_data_requests_get_a_clear_json_error(world):
    url = reverse("dashboards:compare_data", args=[world.project.id])
    for query, words in [("runs=1,a", "runs must"), (f"runs={world.run_ids}&key=loss&lo=9&hi=3", "lo must"),
                         (f"runs={world.run_ids}&after=1:2", "exactly one key"), ("runs=999999", "not in this project")]:
        response = world.client("owner").get(url + "?" + query)
        assert response.status_code == 400 and words in response.json()["error"]["message"]


def test_csv_export_holds_every_point_at_full_resolution(world):
    response = world.client("viewer").get(reverse("dashboards:compare_csv", args=[world.project.id]) + f"?runs={world.run_ids}&key=loss")
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["run_id", "run_number", "run_name", "key", "step", "value", "wall_time"]
    assert len(rows) == 1 + 3 * 50
    assert rows[1] == [str(world.runs[0].id), str(world.runs[0].number), "lr-0.1", "loss", "0", "2.0", "1700000000.0"]


def test_csv_never_starts_a_cell_with_a_formula(world):
    run = world.runs[0]
    type(run).objects.filter(id=run.id).update(name="=HYPERLINK(1)")
    response = world.client("viewer").get(reverse("dashboards:compare_csv", args=[world.project.id]) + f"?runs={run.id}&key=epoch")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][2] == "'=HYPERLINK(1)"


def test_a_shared_dashboards_data_follows_its_saved_state(world):
    dashboard = dashboard_save(user=world.users["owner"], project=world.project, name="shared",
                               state=CompareState(runs=(world.runs[1].id,), keys=("loss",)))
    token = public(world)
    body = world.client("anonymous").get(reverse("dashboards:shared_data", args=[token, dashboard.id])).json()
    assert [s["run"] for s in body["series"]] == [world.runs[1].id]


def test_the_sweep_page_shows_parallel_coordinates_and_best_so_far(world):
    response = world.client("viewer").get(reverse("dashboards:sweep", args=[world.project.id, world.sweep.id]) + "?best=loss&mode=min")
    page = response.content.decode()
    progress = json.loads(page.split('id="sweep-progress" type="application/json">')[1].split("</script>")[0])
    assert [p["best"] for p in progress] == [1.5, 0.5, 0.5]
    assert 'id="parcoords"' in page and "optimizer.lr" in page


def test_runs_not_read_in_time_are_listed_as_pending_and_come_with_the_next_request(world, monkeypatch):
    monkeypatch.setattr("webapp.dashboards.payload.COLD_READ_SECONDS", -1.0)
    MetricRollup.objects.all().delete()  # as runs stored before rollups existed
    body = data(world, f"runs={world.run_ids}&key=loss")
    assert len(body["series"]) == 1 and body["pending"] == [r.id for r in world.runs[1:]]
    rest = data(world, f"runs={','.join(map(str, body['pending']))}&key=loss")
    assert len(rest["series"]) == 1 and rest["pending"] == [world.runs[2].id]
    assert data(world, f"runs={world.run_ids}&key=loss")["pending"] == []  # two cached, one read
