"""The training loop every recipe shares: metrics, progress, a checkpoint per epoch, exact resume."""

from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any

import engine
import engine.nn.functional as F
from engine import track
from engine.utils.data import DataLoader
from worker.recipes.checkpoint import checkpoint_state, restore
from worker.recipes.config import Recipe, parse_recipe
from worker.recipes.data import Task, build_task
from worker.recipes.models import build_model
from worker.recipes.optim import build_optimizer, build_scheduler

LOGS_PER_EPOCH = 10  # step metrics are averaged over windows of about a tenth of an epoch


def run_recipe(config: Recipe | dict[str, Any], *, device: str | None = None, strict: bool = True) -> dict[str, Any]:
    """Train `config` (a Recipe or a recipe dict) in the current `engine.track` run; returns a summary.

    Resumes after the last finished epoch when `track.resume()` has a checkpoint; the finished
    run equals an uninterrupted one (same weights, same metrics from that epoch on).

    Raises:
        RecipeError: for a recipe that can't run, before any training.
    """
    recipe = config if isinstance(config, Recipe) else parse_recipe(config, strict=strict)
    where = engine.device(device or ("cuda" if engine.cuda.is_available() else "cpu"))
    engine.manual_seed(recipe.seed)
    task = build_task(recipe)
    model = build_model(recipe, task).to(where)
    optimizer = build_optimizer(model, recipe)
    data_generator = engine.Generator().manual_seed(recipe.seed)
    train_loader = DataLoader(task.train, batch_size=recipe.batch_size, shuffle=True, generator=data_generator)
    val_loader = DataLoader(task.val, batch_size=recipe.batch_size)
    steps_per_epoch = len(train_loader)
    scheduler, per_batch = build_scheduler(optimizer, recipe, steps_per_epoch)

    done = 0
    checkpoint = track.resume()
    if checkpoint is not None:
        done = restore(checkpoint, recipe=recipe, model=model, optimizer=optimizer, scheduler=scheduler,
                       data_generator=data_generator)
    track.progress(epoch=done, epochs=recipe.epochs)
    summary: dict[str, Any] = {"resumed_after_epoch": done, "epochs": recipe.epochs, "device": str(where)}
    for epoch in range(done + 1, recipe.epochs + 1):
        if where.type == "cuda":
            engine.cuda.manual_seed(recipe.seed * 100_003 + epoch)  # CUDA generators' states can't be saved
        step = (epoch - 1) * steps_per_epoch
        summary.update(_train_epoch(model, train_loader, task, optimizer, scheduler if per_batch else None,
                                    where, first_step=step + 1))
        step += steps_per_epoch
        if scheduler is not None and not per_batch:
            scheduler.step()
        val = evaluate(model, val_loader, task, where)
        track.log({**{f"val_{key}": value for key, value in val.items()}, "epoch": epoch}, step=step)
        summary.update({f"val_{key}": value for key, value in val.items()})
        track.progress(epoch=epoch, epochs=recipe.epochs)  # before the checkpoint, where a sweep's trial may wait
        track.save_checkpoint(checkpoint_state(recipe=recipe, epoch=epoch, model=model, optimizer=optimizer,
                                               scheduler=scheduler, data_generator=data_generator), step=step)
    if done >= recipe.epochs:  # nothing left to train: report the finished model
        summary.update({f"val_{key}": value for key, value in evaluate(model, val_loader, task, where).items()})
    _save_final_model(model)
    _log_final_model(model.cpu(), task)  # training is over: files traced on the CPU load anywhere
    return summary


def _train_epoch(model, loader, task: Task, optimizer, batch_scheduler, where, *, first_step: int) -> dict:
    model.train()
    log_every = max(1, len(loader) // LOGS_PER_EPOCH)
    window = _Window()
    last: dict[str, float] = {}
    for index, (inputs, targets) in enumerate(loader):
        inputs, targets = inputs.to(where), targets.to(where)
        optimizer.zero_grad()
        loss, correct, count = _loss(model(inputs), targets, task)
        loss.backward()
        optimizer.step()
        window.add(loss.detach() * count, correct, count, len(inputs))
        lr = optimizer.param_groups[0]["lr"]
        if batch_scheduler is not None:
            batch_scheduler.step()
        if (index + 1) % log_every == 0 or index + 1 == len(loader):
            last = window.flush(lr)
            track.log(last, step=first_step + index)
    return last


def evaluate(model, loader, task: Task, where) -> dict[str, float]:
    model.eval()
    window = _Window()
    with engine.no_grad():
        for inputs, targets in loader:
            inputs, targets = inputs.to(where), targets.to(where)
            loss, correct, count = _loss(model(inputs), targets, task)
            window.add(loss * count, correct, count, len(inputs))
    return {key: value for key, value in window.flush(None).items() if key in ("loss", "accuracy")}


def _loss(output, targets, task: Task):
    """(mean loss, correct predictions or None, how many predictions)."""
    if task.kind == "regress":
        return F.mse_loss(output, targets), None, targets.numel()
    if task.kind == "language":
        output, targets = output.reshape(-1, output.shape[-1]), targets.reshape(-1)
    correct = (output.detach().argmax(dim=-1) == targets).sum()
    return F.cross_entropy(output, targets), correct, targets.numel()


class _Window:
    """Sums kept on the device between logs, so a step costs no device-to-host copy."""

    def __init__(self):
        self._reset()

    def _reset(self) -> None:
        self.loss_sum: Any = None  # engine tensors once the first batch is in
        self.correct: Any = None
        self.count = self.samples = 0
        self.started = time.perf_counter()

    def add(self, loss_sum, correct, count: int, samples: int) -> None:
        self.loss_sum = loss_sum if self.loss_sum is None else self.loss_sum + loss_sum
        if correct is not None:
            self.correct = correct if self.correct is None else self.correct + correct
        self.count += count
        self.samples += samples

    def flush(self, lr: float | None) -> dict[str, float]:
        values = {"loss": self.loss_sum.item() / self.count}
        if self.correct is not None:
            values["accuracy"] = self.correct.item() / self.count
        if lr is not None:
            values["lr"] = lr
            values["samples_per_s"] = self.samples / max(time.perf_counter() - self.started, 1e-9)
        self._reset()
        return values


def _save_final_model(model) -> None:
    """The trained weights as artifacts/model.safetensors (a plain state dict any safetensors tool reads)."""
    path = track.run_dir() / "artifacts" / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine.save({name: t.detach().cpu() for name, t in model.state_dict().items()}, path)
    track.log_artifact(path, "model.safetensors")


def _log_final_model(model, task: Task) -> None:
    """The trained model via track.log_model: engine.jit and ONNX (engine only without onnx), said in the run log."""
    example = engine.stack([task.val[i][0] for i in range(min(2, len(task.val)))])
    formats = ("engine", "onnx") if importlib.util.find_spec("onnx") is not None else ("engine",)
    if formats == ("engine",):
        print("kiln recipe: onnx is not installed (pip install 'kiln[onnx]'): logging the model as engine.jit only",
              file=sys.stderr)
    try:
        paths = track.log_model(model, (example,), name="model", formats=formats)
    except Exception as exc:  # a model that won't trace or export still leaves its weights and a finished run
        print(f"kiln recipe: the model could not be logged as {' and '.join(formats)}: {exc}", file=sys.stderr)
        if formats == ("engine",):
            return
        try:
            paths = track.log_model(model, (example,), name="model", formats=("engine",))
        except Exception as again:
            print(f"kiln recipe: the model could not be logged as engine: {again}", file=sys.stderr)
            return
    print(f"kiln recipe: logged the model as {', '.join(p.name for p in paths.values())}", file=sys.stderr)
