"""User code runs only on workers that run code (sandbox check held, or the admin's opt-out)."""

from __future__ import annotations

from cluster_factories import job, placed_on, plan, queued, started, worker

from scheduler.pending_reasons import NO_ISOLATED_WORKER, WAITING_FOR_ISOLATED
from scheduler.policy import Quotas, UsageTotals, never_fits


def test_code_run_goes_to_an_isolated_worker_only():
    workers = [worker("a-open", gpus=0, runs_code=False), worker("b-sandboxed", gpus=0)]

    result = plan([queued(1, gpus=0, code=True)], workers)

    assert placed_on(result) == {1: ("b-sandboxed", ())}


def test_code_run_stays_queued_when_no_worker_is_isolated():
    result = plan([queued(1, gpus=0, code=True)], [worker("w1", gpus=0, runs_code=False)])

    assert result.assignments == ()
    assert result.pending_reasons == {1: NO_ISOLATED_WORKER}
    assert NO_ISOLATED_WORKER.startswith("no isolated worker: ") and "KILN_ALLOW_UNISOLATED_CODE=1" in NO_ISOLATED_WORKER


def test_recipe_runs_go_anywhere():
    result = plan([queued(1, gpus=0)], [worker("w1", gpus=0, runs_code=False)])

    assert placed_on(result) == {1: ("w1", ())}


def test_code_run_too_big_for_every_isolated_worker_says_so():
    workers = [worker("big", gpus=8, runs_code=False), worker("small", gpus=2)]

    result = plan([queued(1, gpus=8, code=True)], workers)

    assert result.pending_reasons == {
        1: "no isolated worker big enough: asks for 8 GPUs on one worker; the largest worker has 2"
    }


def test_code_run_waits_for_an_isolated_worker_while_only_open_ones_have_room():
    workers = [worker("open", gpus=0, runs_code=False), worker("sandboxed", gpus=0, cpu_slots=1, running=[job(90, gpus=0)])]

    result = plan([queued(1, gpus=0, code=True)], workers)

    assert result.assignments == ()
    assert result.pending_reasons[1].startswith(WAITING_FOR_ISOLATED)
    assert result.reservation is not None and result.reservation.worker == "sandboxed"


def test_a_blocked_code_run_does_not_stop_another_users_recipe_run_from_starting():
    workers = [worker("open", gpus=0, runs_code=False), worker("sandboxed", gpus=0, cpu_slots=1, running=[job(90, gpus=0)])]
    usage = UsageTotals(0.0, {"bob": 1e6})  # ada goes first in fair-share order

    result = plan([queued(1, "ada", gpus=0, code=True), queued(2, "bob", gpus=0)], workers, usage=usage)

    assert placed_on(result) == {2: ("open", ())}
    assert result.pending_reasons[1].startswith(WAITING_FOR_ISOLATED)


def test_never_fits_does_not_refuse_code_for_want_of_isolation():
    assert never_fits(queued(1, gpus=0, code=True), [worker("w1", gpus=0, runs_code=False)], Quotas()) is None


def test_fair_share_order_holds_among_code_runs():
    workers = [worker("sandboxed", gpus=2), worker("open", gpus=8, runs_code=False)]
    usage = UsageTotals(0.0, {"ada": 1e6})

    result = plan([queued(1, "ada", code=True), queued(2, "bob", code=True), queued(3, "bob", code=True)], workers,
                  usage=usage)

    assert started(result) == [2, 3]
    assert {name for name, _ in placed_on(result).values()} == {"sandboxed"}
