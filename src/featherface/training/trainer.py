"""The training loop: checkpoints, exact resume, time budget, DDP, AMP, progress, metrics.

One loop serves task-loss training and distillation: what differs is the *objective*, a module that turns
``(net, images, targets)`` into named losses (``"total"`` is optimised); its own parameters (e.g. learnable
loss weights) are trained and checkpointed with the network.

Run directory:
- ``last.safetensors``/``.json`` every epoch, ``best.safetensors``/``.json`` on a better validation score;
- ``trainer_state.pt``: model, optimiser, scheduler, objective and loop counters in one atomically written file
  (tensors and numbers only, read back with ``torch.load(weights_only=True)``); ``--resume`` reads only it;
- ``config.yaml`` (the resolved configuration), ``metrics.csv`` (one row per whole epoch).

A run stopped by its time budget (``max_minutes``) inside an epoch is evaluated and saved as what it is: N whole
epochs and k steps of the next (no metrics row for the part); ``resume`` continues that epoch at step k + 1, with
the same data order, so the epoch's row is the one an uninterrupted run writes.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from featherface.data.dataset import FaceDataset, collate
from featherface.detection.api import Detector
from featherface.detection.matching import Targets
from featherface.detection.priors import PriorBox
from featherface.evaluation.runner import evaluate_detector
from featherface.fileio import atomic_write_bytes
from featherface.losses.multibox import MultiBoxLoss, stack_targets
from featherface.models.checkpoint import save_checkpoint
from featherface.models.detector_net import DetectorNet
from featherface.training.config import TrainConfig
from featherface.training.distributed import DistributedContext, init_distributed
from featherface.training.schedule import lr_multiplier

STATE_FILE = "trainer_state.pt"
METRICS_FILE = "metrics.csv"
# an epoch the time budget stopped: (steps done, loss sums over them, seconds spent)
Partial = tuple[int, dict[str, float], float]
NO_PARTIAL: Partial = (0, {}, 0.0)


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, inconsistent resume state); the message says why and what is kept."""


class TaskObjective(nn.Module):
    """The MultiBox task loss on the network's outputs."""

    def __init__(self, net: DetectorNet, config: TrainConfig) -> None:
        super().__init__()
        self.loss = MultiBoxLoss(config.loss)
        self.priors = PriorBox(net.config.anchors)
        self.variances = net.config.anchors.variances
        self.match_iou = config.loss.match_iou

    def prior_targets(self, images: torch.Tensor, targets: list[Targets]):
        priors = self.priors(images.shape[2], images.shape[3], images.device)
        return stack_targets([t.to(images.device) for t in targets], priors, self.variances, self.match_iou)

    def forward(self, net: nn.Module, images: torch.Tensor, targets: list[Targets]) -> dict[str, torch.Tensor]:
        return self.loss(net(images), self.prior_targets(images, targets))


@dataclass
class TrainResult:
    epochs_done: int  # whole epochs
    best_metric: float | None
    stopped_by_budget: bool
    out_dir: Path
    partial_steps: int = 0  # steps of epoch epochs_done + 1 done when the time budget stopped it (0: none)


class _SkipFirst(Sampler):
    """The wrapped sampler's indices without the first ``skip`` (set before an epoch): a run stopped inside an epoch
    continues it where it stopped, in the same order."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler
        self.skip = 0

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class Trainer:
    """``Trainer(net, config, out_dir).fit()``; ``resume=True`` continues from ``out_dir/trainer_state.pt``."""

    def __init__(
        self,
        net: DetectorNet,
        config: TrainConfig,
        out_dir: str | Path,
        resume: bool = False,
        objective: nn.Module | None = None,
        train_annotations: list | None = None,
        val_annotations: list | None = None,
        on_epoch_end: Callable[[int, nn.Module], None] | None = None,
        quiet: bool = False,
    ) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.ctx: DistributedContext = init_distributed(config.device)
        torch.manual_seed(config.seed)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.net = net.to(self.ctx.device, memory_format=self.memory_format)
        self.objective = (objective or TaskObjective(net, config)).to(self.ctx.device, memory_format=self.memory_format)
        self.train_annotations, self.val_annotations = self._annotations(train_annotations, val_annotations)
        self._make_loader()
        self.optimizer = self._make_optimizer(self._param_groups())
        self.scheduler = self._make_scheduler()
        self.use_amp = config.amp and self.ctx.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.model: nn.Module = self._parallel_model()
        self.on_epoch_end = on_epoch_end
        self.verbose = self.ctx.is_main and not quiet
        self.start_epoch = 0
        self.best_metric: float | None = None
        # steps, loss sums and seconds of an epoch the time budget stopped (continued on resume)
        self.partial: Partial = NO_PARTIAL
        if resume:
            self._load_state()
        elif self.ctx.is_main:
            self._start_run_dir()

    def _annotations(self, train: list | None, val: list | None) -> tuple[list, list | None]:
        """The annotations given, else those of ``config.data`` (and ``config.val``; no validation without)."""
        from featherface.data.sample import resolve_dataset

        c = self.config
        train = train or resolve_dataset(c.data, strict=c.strict)
        if val is None and c.val:
            val = resolve_dataset(c.val, strict=c.strict)
        return train, val

    def _make_loader(self) -> None:
        """The augmented dataset, this process's share of it (a sampler that can skip the steps a stopped epoch
        did), and batches of ``config.batch_size`` per process."""
        c = self.config
        self.dataset = FaceDataset(self.train_annotations, c.augment, True, c.seed, c.dataset_repeats, c.strict)
        self.sampler = DistributedSampler(
            self.dataset, num_replicas=self.ctx.world_size, rank=self.ctx.rank, shuffle=True, seed=c.seed
        )
        self.per_rank_batch = max(1, c.batch_size)
        self.resumable_sampler = _SkipFirst(self.sampler)
        self.loader = DataLoader(
            self.dataset,
            batch_size=self.per_rank_batch,
            sampler=self.resumable_sampler,
            num_workers=c.workers,
            collate_fn=collate,
            drop_last=len(self.sampler) >= self.per_rank_batch,
        )
        self.steps_per_epoch = max(1, len(self.loader))

    def _make_scheduler(self) -> torch.optim.lr_scheduler.LambdaLR:
        c = self.config
        multiplier = lr_multiplier(
            c.schedule, self.steps_per_epoch, c.epochs, c.warmup_epochs, c.lr_steps, c.lr_gamma, c.min_lr_ratio
        )
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, multiplier)

    def _parallel_model(self) -> nn.Module:
        """The network as the training step calls it: wrapped for DistributedDataParallel under torchrun."""
        if not self.ctx.enabled:
            return self.net
        device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(self.net, device_ids=device_ids)

    def _start_run_dir(self) -> None:
        """A fresh run: its options written to ``config.yaml``, and no metrics row of an earlier attempt (killed
        before its first commit, or replaced) kept."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.out_dir / "config.yaml", yaml.safe_dump({"train": self.config.to_dict()}).encode())
        self._trim_metrics(0)

    def _backbone(self) -> nn.Module:
        backbone = getattr(self.net, "backbone", None)
        if not isinstance(backbone, nn.Module):
            raise ValueError(f"backbone_lr_scale / freeze_backbone_bn: {type(self.net).__name__} has no backbone")
        return backbone

    def _param_groups(self) -> list[dict[str, Any]]:
        """The optimiser's groups: everything trainable at ``lr``, the backbone at ``lr * backbone_lr_scale`` (its
        weights frozen at 0); the objective's own parameters (adapters, loss weights) with the rest."""
        c = self.config
        if c.backbone_lr_scale == 1.0:
            return [
                {"params": [p for p in self.net.parameters() if p.requires_grad] + list(self.objective.parameters())}
            ]
        backbone = list(self._backbone().parameters())
        if c.backbone_lr_scale == 0:
            for param in backbone:
                param.requires_grad_(False)  # no gradient computed for it at all, not just a zero step
        in_backbone = {id(param) for param in backbone}
        rest = [p for p in self.net.parameters() if p.requires_grad and id(p) not in in_backbone]
        groups = [{"params": rest + list(self.objective.parameters())}]
        trainable = [param for param in backbone if param.requires_grad]
        if c.backbone_lr_scale > 0 and trainable:
            groups.append({"params": trainable, "lr": c.lr * c.backbone_lr_scale})
        return groups

    def _train_mode(self) -> None:
        """The network in training mode, but for the backbone's batch norms with ``freeze_backbone_bn``."""
        self.net.train()
        if self.config.freeze_backbone_bn:
            for module in self._backbone().modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def _make_optimizer(self, params: list[dict[str, Any]]) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        raise ValueError(f"optimizer must be sgd or adamw, not {c.optimizer!r}")

    # ------------------------------------------------------------------ state
    def _state(self, epoch: int, partial: Partial = NO_PARTIAL) -> dict[str, Any]:
        steps, sums, seconds = partial
        return {
            "epoch": epoch,  # whole epochs done
            "step": steps,  # steps of the next epoch done (time budget)
            "partial_sums": sums,
            "partial_seconds": seconds,
            "best_metric": self.best_metric,
            "model": self.net.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def _load_state(self) -> None:
        path = self.out_dir / STATE_FILE
        if not path.is_file():
            raise TrainingError(f"{self.out_dir}: nothing to resume (no {STATE_FILE})")
        state = torch.load(path, map_location=self.ctx.device, weights_only=True)
        try:
            self.net.load_state_dict(state["model"])
            self.objective.load_state_dict(state["objective"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise TrainingError(f"{path}: does not fit this model/config ({str(exc).splitlines()[0]})") from None
        self.start_epoch = int(state["epoch"])
        self.best_metric = state["best_metric"]
        self.partial = (int(state.get("step", 0)), dict(state.get("partial_sums", {})), state.get("partial_seconds", 0))
        if self.ctx.is_main:
            self._trim_metrics(self.start_epoch)

    def _save(self, epoch: int, metric: float | None, is_best: bool, partial: Partial = NO_PARTIAL) -> None:
        """Weights first, the resume state last: the state file is the commit point of an epoch, so a kill at any
        moment leaves a state that resumes at its epoch (later files are simply rewritten). ``partial``: steps, loss
        sums and seconds of epoch ``epoch + 1`` when the time budget stopped it."""
        meta = {"epoch": epoch, "model_name": self.net.config.name, "validation": metric}
        if partial[0]:
            meta["steps_into_next_epoch"] = partial[0]
        save_checkpoint(self.net, self.out_dir / "last.safetensors", meta)
        if is_best:
            save_checkpoint(self.net, self.out_dir / "best.safetensors", meta)
        _atomic_torch_save(self._state(epoch, partial), self.out_dir / STATE_FILE)

    def _trim_metrics(self, last_epoch: int) -> None:
        """Drop metric rows of epochs after the resumed one (written before a kill, about to be redone)."""
        path = self.out_dir / METRICS_FILE
        if not path.is_file():
            return
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if int(r["epoch"]) <= last_epoch]
        if len(kept) == len(rows):
            return
        if not kept:
            path.unlink()
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_bytes(path, buffer.getvalue().encode())

    # -------------------------------------------------------------- validation
    def validate(self) -> float | None:
        """AP@0.5 on the validation set (higher is better), or None without one or when it holds no face (AP is
        undefined then)."""
        if not self.val_annotations:
            return None
        was_training = self.net.training
        detector = Detector.from_net(self.net, device=self.ctx.device)
        result, _ = evaluate_detector(
            detector, self.val_annotations, score_threshold=self.config.val_score_threshold, progress=False
        )
        self.net.train(was_training)
        return result.ap

    # ------------------------------------------------------------------- loop
    def _step(self, images: torch.Tensor, targets: list[Targets]) -> dict[str, torch.Tensor]:
        images = images.to(self.ctx.device, non_blocking=True, memory_format=self.memory_format)
        with torch.autocast(self.ctx.device.type, enabled=self.use_amp):
            losses = self.objective(self.model, images, targets)
        total = losses["total"]
        if not torch.isfinite(total):
            last = self.out_dir / "last.safetensors"
            kept = f"last good checkpoint kept: {last}" if last.exists() else "no checkpoint was written yet"
            raise TrainingError(f"loss became {total.item()} (diverged); lower the learning rate; {kept}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: v.detach() for k, v in losses.items()}

    def fit(self) -> TrainResult:
        c = self.config
        started = time.monotonic()
        deadline = started + c.max_minutes * 60 if c.max_minutes else math.inf
        stopped_by_budget = False
        epoch = self.start_epoch
        epoch_seconds: list[float] = []
        while epoch < c.epochs and not stopped_by_budget:
            steps, sums, seconds_before = self.partial[0], dict(self.partial[1]), self.partial[2]
            self.partial = NO_PARTIAL
            epoch_start = time.monotonic() - seconds_before
            self.sampler.set_epoch(epoch)
            self.dataset.set_epoch(epoch)
            self.resumable_sampler.skip = steps * self.per_rank_batch
            self._train_mode()
            bar = tqdm(
                self.loader,
                desc=f"epoch {epoch + 1}/{c.epochs}",
                unit="step",
                initial=steps,
                total=self.steps_per_epoch,
                leave=False,
                disable=not self.verbose,
                dynamic_ncols=True,
            )
            for images, targets in bar:
                losses = self._step(images, targets)
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + float(self.ctx.all_reduce_mean(value))
                steps += 1
                bar.set_postfix(loss=f"{sums['total'] / steps:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                if self.ctx.broadcast_flag(time.monotonic() > deadline):
                    stopped_by_budget = True
                    break
            bar.close()
            self.resumable_sampler.skip = 0
            if stopped_by_budget and steps < self.steps_per_epoch:
                return self._stop_inside_epoch(epoch, steps, sums, time.monotonic() - epoch_start)
            epoch += 1
            finished = epoch >= c.epochs or stopped_by_budget
            metric = None
            validated = self.ctx.is_main and bool(self.val_annotations) and (epoch % c.val_every == 0 or finished)
            if validated:
                metric = self.validate()
            # best by validation AP when there is a validation set, else by (negated) training loss
            score = metric if self.val_annotations else -sums.get("total", math.inf) / max(steps, 1)
            is_best = score is not None and (self.best_metric is None or score > self.best_metric)
            if is_best:
                self.best_metric = score
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, self.net)
            if self.ctx.is_main:
                epoch_seconds.append(time.monotonic() - epoch_start)
                self._log(epoch, steps, sums, metric, epoch_seconds[-1])
                self._save(epoch, metric, is_best)
                remaining = (c.epochs - epoch) * (sum(epoch_seconds) / len(epoch_seconds))
                if c.max_minutes:
                    remaining = min(remaining, max(0.0, deadline - time.monotonic()))
                val = f"  val AP {_format_ap(metric)}" if validated else ""
                self._say(
                    f"epoch {epoch}/{c.epochs}  loss {sums.get('total', 0) / max(steps, 1):.4f}{val}  "
                    f"{epoch_seconds[-1]:.1f} s/epoch  ETA {remaining / 60:.1f} min"
                )
            self.ctx.barrier()
        if stopped_by_budget:
            self._say(f"time budget of {c.max_minutes} min reached after epoch {epoch}: evaluated and saved")
        return TrainResult(epoch, self.best_metric, stopped_by_budget, self.out_dir)

    def _stop_inside_epoch(self, epoch: int, steps: int, sums: dict[str, float], seconds: float) -> TrainResult:
        """The time budget ran out after ``steps`` steps of epoch ``epoch + 1``: evaluate and save the network as
        ``epoch`` whole epochs plus those steps (no metrics row: rows are whole epochs); resume continues there."""
        metric = self.validate() if self.ctx.is_main and self.val_annotations else None
        score = metric if self.val_annotations else -sums.get("total", math.inf) / max(steps, 1)
        is_best = score is not None and (self.best_metric is None or score > self.best_metric)
        if is_best:
            self.best_metric = score
        if self.ctx.is_main:
            self._save(epoch, metric, is_best, partial=(steps, sums, seconds))
            val = f", val AP {_format_ap(metric)}" if self.val_annotations else ""
            self._say(
                f"time budget of {self.config.max_minutes} min reached after {steps}/{self.steps_per_epoch} steps of "
                f"epoch {epoch + 1} ({epoch} whole epoch(s) done{val}): evaluated and saved; --resume continues "
                f"epoch {epoch + 1} at step {steps + 1}"
            )
        self.ctx.barrier()
        return TrainResult(epoch, self.best_metric, True, self.out_dir, partial_steps=steps)

    def _tensorboard(self, epoch: int, row: dict[str, Any]) -> None:
        """Mirror the CSV row to TensorBoard when the ``tensorboard`` package is installed (optional)."""
        if not hasattr(self, "_writer"):
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.out_dir / "tensorboard"))
            except ImportError:
                self._writer = None
        if self._writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, int | float):
                    self._writer.add_scalar(key, value, epoch)
            self._writer.flush()

    def _say(self, message: str) -> None:
        if self.verbose:
            tqdm.write(message)

    def _log(self, epoch: int, steps: int, sums: dict[str, float], metric: float | None, seconds: float) -> None:
        path = self.out_dir / METRICS_FILE
        row = {
            "epoch": epoch,
            "lr": self.scheduler.get_last_lr()[0],
            **{f"loss_{k}": v / max(steps, 1) for k, v in sorted(sums.items())},
            "val_ap": "" if metric is None else metric,
            "seconds": round(seconds, 2),
        }
        extra = getattr(self.objective, "log_values", None)
        if callable(extra):
            row.update(extra())
        self._tensorboard(epoch, row)
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())


def _format_ap(ap: float | None) -> str:
    return "n/a (no faces in the validation set)" if ap is None else f"{ap:.4f}"


def _letterbox_loader(annotations: list, config: TrainConfig, batch_size: int) -> DataLoader:
    """Images letterboxed to the training size, in order, without augmentation."""
    dataset = FaceDataset(annotations, config.augment, train=False, seed=config.seed)
    return DataLoader(dataset, batch_size=max(1, batch_size), shuffle=False, num_workers=0, collate_fn=collate)


@torch.no_grad()
def validation_loss(
    net: DetectorNet, annotations: list, config: TrainConfig, device: torch.device | None = None
) -> float:
    """Mean task loss over ``annotations`` letterboxed to the training size (no augmentation), in eval mode."""
    device = device or next(net.parameters()).device
    loader = _letterbox_loader(annotations, config, batch_size=4)
    objective = TaskObjective(net, config)
    was_training = net.training
    net.eval()
    total, batches = 0.0, 0
    for images, targets in loader:
        total += float(objective(net, images.to(device), targets)["total"])
        batches += 1
    net.train(was_training)
    return total / max(batches, 1)


@torch.no_grad()
def recalibrate_batchnorm(net: DetectorNet, annotations: list, config: TrainConfig, batches: int = 4) -> None:
    """Re-estimate every BatchNorm's running statistics on ``batches`` letterboxed training batches.

    A pruned sub-network inherits statistics measured on the full one, so scoring it as is measures the mismatch
    more than the sub-network (EagleEye, Li et al. 2020: adaptive BN makes sub-net scores track final accuracy).
    """
    device = next(net.parameters()).device
    loader = _letterbox_loader(annotations, config, batch_size=config.batch_size)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    was_training = net.training
    net.train()
    for i, (images, _) in enumerate(loader):
        if i >= batches:
            break
        net(images.to(device))
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    net.train(was_training)
